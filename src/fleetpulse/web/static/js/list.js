// The vehicle list: search by device id, sort by status, speed, alerts or last seen.

import { escapeHtml, formatAgo, formatValue, throttle } from "./format.js";
import { statusRank } from "./fleet.js";

// Rows drawn at most; a search narrows the rest. Thousands of rows re-drawn every second
// would cost more frame time than the map.
const MAX_ROWS = 200;
const RENDER_INTERVAL_MS = 1000;
const MOTION_RANK = { moving: 0, idle: 1, parked: 2, offline: 3 };

/** The list in the left column, re-drawn at most once a second. */
export class VehicleList {
  constructor({ list, count, search, sort }, fleet, { onSelect }) {
    this.list = list;
    this.count = count;
    this.search = search;
    this.sort = sort;
    this.fleet = fleet;
    this.selectedId = null;
    this.scheduleRender = throttle(() => this.render(), RENDER_INTERVAL_MS);
    search.addEventListener("input", () => this.render());
    sort.addEventListener("change", () => this.render());
    list.addEventListener("click", (click) => {
      const row = click.target.closest("[data-device-id]");
      if (row) onSelect(row.dataset.deviceId);
    });
  }

  setSelected(deviceId) {
    this.selectedId = deviceId;
    this.render();
  }

  comparator(alertCounts, nowMs) {
    const fleet = this.fleet;
    const byId = (a, b) => a.device_id.localeCompare(b.device_id);
    switch (this.sort.value) {
      case "speed":
        return (a, b) => (b.speed_kmh ?? -1) - (a.speed_kmh ?? -1) || byId(a, b);
      case "alerts":
        return (a, b) =>
          (alertCounts.get(b.device_id) ?? 0) - (alertCounts.get(a.device_id) ?? 0) || byId(a, b);
      case "last_seen":
        return (a, b) => b.last_received_at_ms - a.last_received_at_ms || byId(a, b);
      case "id":
        return byId;
      default:
        return (a, b) =>
          statusRank(b.status) - statusRank(a.status)
          || MOTION_RANK[fleet.motionOf(a, nowMs)] - MOTION_RANK[fleet.motionOf(b, nowMs)]
          || byId(a, b);
    }
  }

  render() {
    const nowMs = Date.now();
    const needle = this.search.value.trim().toLowerCase();
    const alertCounts = this.fleet.alertCounts(nowMs);
    let views = [...this.fleet.vehicles.values()];
    if (needle) views = views.filter((view) => view.device_id.toLowerCase().includes(needle));
    views.sort(this.comparator(alertCounts, nowMs));

    const shown = views.slice(0, MAX_ROWS);
    this.list.innerHTML = shown.map((view) => this.rowHtml(view, alertCounts, nowMs)).join("");
    const total = this.fleet.vehicles.size;
    this.count.textContent = views.length > shown.length
      ? `${shown.length} of ${views.length} shown (${total} vehicles); search to narrow`
      : `${views.length} of ${total} vehicles`;
  }

  rowHtml(view, alertCounts, nowMs) {
    const motion = this.fleet.motionOf(view, nowMs);
    const alerts = alertCounts.get(view.device_id) ?? 0;
    const badge = alerts ? `<span class="badge" title="alerts in the last hour">${alerts}</span>` : "";
    const reasons = view.reasons.length ? ` · ${escapeHtml(view.reasons.join(", "))}` : "";
    const selected = view.device_id === this.selectedId ? " selected" : "";
    return `<li class="vehicle-row${selected}" data-device-id="${escapeHtml(view.device_id)}"
        data-motion="${motion}" data-status="${escapeHtml(view.status)}">
      <i class="dot m-${motion}"></i>
      <span class="id">${escapeHtml(view.device_id)}${badge}</span>
      <span class="speed">${formatValue(view.speed_kmh, "km/h")}</span>
      <span class="sub">${motion} · ${escapeHtml(view.status)} · ${formatAgo(view.last_received_at_ms, nowMs)}${reasons}</span>
    </li>`;
  }
}
