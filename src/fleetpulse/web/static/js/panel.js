// The vehicle panel: current state, charts of the last hour, today's trips and playback.

import { getJson, vehiclePath } from "./api.js";
import { drawLineChart } from "./chart.js";
import {
  escapeHtml, formatAgo, formatClock, formatDuration, formatValue, localMidnightMs,
} from "./format.js";

const HOUR_MS = 3_600_000;
// The positions endpoint returns at most 10,000 records per page: 2.7 hours at 1 Hz.
const POSITIONS_LIMIT = 10_000;
const REFRESH_MS = 30_000;
// An open trip's route is read up to a minute past now, so device clocks a little ahead count.
const OPEN_TRIP_SLACK_MS = 60_000;
const CHARTS = [
  { key: "speed_kmh", title: "Speed", unit: "km/h", color: "#1d4ed8" },
  { key: "fuel_pct", title: "Fuel", unit: "%", color: "#1f9d55" },
  { key: "coolant_c", title: "Coolant", unit: "°C", color: "#d63b3b" },
  { key: "battery_v", title: "Battery", unit: "V", color: "#e0a800", digits: 1 },
];

/** The floating panel over the map, for one vehicle at a time. */
export class VehiclePanel {
  constructor(elements, fleet, fleetMap) {
    this.el = elements;
    this.fleet = fleet;
    this.fleetMap = fleetMap;
    this.deviceId = null;
    this.refreshTimer = null;
    this.route = [];
    this.playing = false;
    this.playbackMs = 0;
    this.el.close.addEventListener("click", () => this.close());
    this.el.trips.addEventListener("click", (click) => {
      const row = click.target.closest("[data-trip-index]");
      if (row) this.showTrip(Number(row.dataset.tripIndex));
    });
    this.el.playbackToggle.addEventListener("click", () => this.togglePlayback());
    this.el.playbackSlider.addEventListener("input", () => {
      this.pausePlayback();
      this.moveTo(Number(this.el.playbackSlider.value));
    });
  }

  async open(deviceId) {
    this.deviceId = deviceId;
    this.trips = [];
    this.selectedTrip = null;
    this.pausePlayback();
    this.fleetMap.clearRoute();
    this.el.playback.hidden = true;
    this.el.root.hidden = false;
    this.el.root.dataset.deviceId = deviceId;
    this.el.title.textContent = deviceId;
    this.renderFacts();
    clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => this.loadHistory(), REFRESH_MS);
    await this.loadHistory();
  }

  close() {
    this.deviceId = null;
    clearInterval(this.refreshTimer);
    this.pausePlayback();
    this.fleetMap.clearRoute();
    this.el.root.hidden = true;
  }

  /** Re-draw the facts when the selected vehicle is among `views`. */
  onVehicles(views) {
    if (this.deviceId && views.some((view) => view.device_id === this.deviceId)) this.renderFacts();
  }

  renderFacts() {
    const view = this.fleet.vehicles.get(this.deviceId);
    if (!view) {
      this.el.facts.innerHTML = "<dt>state</dt><dd>unknown</dd>";
      return;
    }
    const facts = [
      ["motion", this.fleet.motionOf(view)],
      ["status", view.status],
      ["speed", formatValue(view.speed_kmh, "km/h")],
      ["heading", formatValue(view.heading_deg, "°")],
      ["ignition", view.ignition === null ? "–" : view.ignition ? "on" : "off"],
      ["fuel", formatValue(view.fuel_pct, "%")],
      ["coolant", formatValue(view.coolant_c, "°C")],
      ["battery", formatValue(view.battery_v, "V", 1)],
      ["odometer", formatValue(view.odometer_m === null ? null : view.odometer_m / 1000, "km", 1)],
      ["last seen", formatAgo(view.last_received_at_ms)],
      ["reasons", view.reasons.join(", ") || "–"],
      ["DTC", view.dtc.join(", ") || "–"],
    ];
    this.el.facts.innerHTML = facts
      .map(([name, value]) => `<dt>${name}</dt><dd>${escapeHtml(value)}</dd>`)
      .join("");
  }

  async loadHistory() {
    const deviceId = this.deviceId;
    const nowMs = Date.now();
    try {
      const [positions, trips] = await Promise.all([
        getJson(`${vehiclePath(deviceId, "/positions")}?from=${nowMs - HOUR_MS}&limit=${POSITIONS_LIMIT}`),
        getJson(`${vehiclePath(deviceId, "/trips")}?from=${localMidnightMs(nowMs)}`),
      ]);
      if (deviceId !== this.deviceId) return;
      // The time axis starts at the oldest record, so a vehicle that started reporting
      // a few minutes ago still gets readable charts.
      const records = positions.positions;
      const fromMs = records.length ? records[0].ts_ms : nowMs - HOUR_MS;
      this.renderCharts(records, fromMs, nowMs);
      this.trips = trips.trips.sort((a, b) => b.start_ts_ms - a.start_ts_ms);
      this.renderTrips();
    } catch (error) {
      console.warn(`fleetpulse: history of ${deviceId} failed:`, error.message);
    }
  }

  renderCharts(positions, fromMs, toMs) {
    this.el.charts.innerHTML = CHARTS.map((chart) => `
      <div class="chart" data-chart="${chart.key}">
        <div class="chart-title"><span>${chart.title}</span><span class="latest"></span></div>
        <canvas></canvas>
      </div>`).join("");
    for (const chart of CHARTS) {
      const points = [];
      for (const position of positions) {
        const value = position[chart.key];
        if (value !== null && value !== undefined) points.push([position.ts_ms, value]);
      }
      const box = this.el.charts.querySelector(`[data-chart="${chart.key}"]`);
      const latest = points.length ? points[points.length - 1][1] : null;
      box.querySelector(".latest").textContent = formatValue(latest, chart.unit, chart.digits ?? 0);
      drawLineChart(box.querySelector("canvas"), points, { color: chart.color, fromMs, toMs });
    }
  }

  renderTrips() {
    if (!this.trips.length) {
      this.el.trips.innerHTML = `<li class="empty">No trips today.</li>`;
      return;
    }
    this.el.trips.innerHTML = this.trips.map((trip, index) => `
      <li class="trip${index === this.selectedTrip ? " selected" : ""}" data-trip-index="${index}">
        <span>${formatClock(trip.start_ts_ms)} – ${trip.open ? '<span class="open">driving</span>' : formatClock(trip.end_ts_ms)}</span>
        <span>${formatValue(trip.distance_m / 1000, "km", 1)} · ${formatDuration(trip.duration_s)} · max ${formatValue(trip.max_speed_kmh, "km/h")}</span>
      </li>`).join("");
  }

  /** Draw a trip's route and prepare its playback. */
  async showTrip(index) {
    const trip = this.trips[index];
    const deviceId = this.deviceId;
    this.selectedTrip = index;
    this.renderTrips();
    const toMs = trip.open ? Date.now() + OPEN_TRIP_SLACK_MS : trip.end_ts_ms + 1;
    const path = `${vehiclePath(deviceId, "/positions")}?from=${trip.start_ts_ms}&to=${toMs}&limit=${POSITIONS_LIMIT}`;
    const page = await getJson(path);
    if (deviceId !== this.deviceId) return;
    // NOTE: a trip longer than POSITIONS_LIMIT records is drawn only up to that record.
    this.route = page.positions.filter((position) => position.lat !== null && !position.flags.includes("no_fix"));
    this.fleetMap.showRoute(this.route.map((position) => [position.lat, position.lon]));
    this.el.playback.hidden = this.route.length < 2;
    this.el.playbackSlider.max = String(Math.max(0, this.route.length - 1));
    this.moveTo(0);
  }

  moveTo(index) {
    const position = this.route[index];
    if (!position) return;
    this.el.playbackSlider.value = String(index);
    this.playbackMs = position.ts_ms;
    this.el.playbackTime.textContent = `${formatClock(position.ts_ms)} · ${formatValue(position.speed_kmh, "km/h")}`;
    this.fleetMap.setPlayback(position.lat, position.lon, position.heading_deg);
  }

  togglePlayback() {
    if (this.playing) {
      this.pausePlayback();
      return;
    }
    if (Number(this.el.playbackSlider.value) >= this.route.length - 1) this.moveTo(0);
    this.playing = true;
    this.el.playbackToggle.textContent = "Pause";
    let lastFrameMs = performance.now();
    const step = (frameMs) => {
      if (!this.playing) return;
      const speed = Number(this.el.playbackSpeed.value);
      this.playbackMs += (frameMs - lastFrameMs) * speed;
      lastFrameMs = frameMs;
      let index = Number(this.el.playbackSlider.value);
      while (index < this.route.length - 1 && this.route[index + 1].ts_ms <= this.playbackMs) index += 1;
      const playbackMs = this.playbackMs;
      this.moveTo(index);
      this.playbackMs = playbackMs;
      if (index >= this.route.length - 1) {
        this.pausePlayback();
        return;
      }
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  pausePlayback() {
    this.playing = false;
    this.el.playbackToggle.textContent = "Play";
  }
}
