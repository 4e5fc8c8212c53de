// The alerts feed: warning and critical events, newest first.

import { escapeHtml, eventLabel, formatClock, formatValue, throttle } from "./format.js";

const MAX_ITEMS = 100;
const RENDER_INTERVAL_MS = 500;

function detailText(event) {
  const details = event.details ?? {};
  switch (event.type) {
    case "overspeed":
      return `${formatValue(details.max_speed_kmh, "km/h")} in a ${formatValue(details.limit_kmh, "km/h")} limit`
        + (details.ongoing ? " · ongoing" : ` · ${formatValue(details.duration_s, "s")}`);
    case "engine_overheat":
      return `coolant ${formatValue(details.coolant_c, "°C")}`;
    case "low_fuel":
      return `fuel ${formatValue(details.fuel_pct, "%")}`;
    case "low_battery":
      return `battery ${formatValue(details.battery_v, "V", 1)}`;
    case "dtc":
      return Array.isArray(details.codes) ? details.codes.join(", ") : "";
    default:
      return "";
  }
}

/** The feed in the right column; clicking an item selects its vehicle. */
export class AlertFeed {
  constructor(element, fleet, { onSelect }) {
    this.element = element;
    this.fleet = fleet;
    this.scheduleRender = throttle(() => this.render(), RENDER_INTERVAL_MS);
    element.addEventListener("click", (click) => {
      const item = click.target.closest("[data-device-id]");
      if (item) onSelect(item.dataset.deviceId, Number(item.dataset.eventId));
    });
  }

  render() {
    const events = [...this.fleet.alerts.values()]
      .sort((a, b) => b.ts_ms - a.ts_ms || b.id - a.id)
      .slice(0, MAX_ITEMS);
    if (!events.length) {
      this.element.innerHTML = `<li class="empty">No warnings or critical events yet.</li>`;
      return;
    }
    this.element.innerHTML = events.map((event) => `
      <li class="alert-item sev-${escapeHtml(event.severity)}" data-event-id="${event.id}"
          data-type="${escapeHtml(event.type)}" data-device-id="${escapeHtml(event.device_id)}">
        <span class="sev">${escapeHtml(event.severity)}</span>
        <div class="type">${escapeHtml(eventLabel(event.type))}</div>
        <div class="meta">${escapeHtml(event.device_id)} · ${formatClock(event.ts_ms)}</div>
        <div class="detail">${escapeHtml(detailText(event))}</div>
      </li>`).join("");
  }
}
