// Dashboard entry point: load settings and the current fleet, then wire the parts together.

import { getJson } from "./api.js";
import { AlertFeed } from "./alerts.js";
import { Fleet } from "./fleet.js";
import { startKpis } from "./kpi.js";
import { VehicleList } from "./list.js";
import { LiveFeed } from "./live.js";
import { FleetMap } from "./map.js";
import { VehiclePanel } from "./panel.js";

const HOUR_MS = 3_600_000;
const INITIAL_EVENTS_LIMIT = 500;
// Vehicles that stop reporting turn offline on the map without any new frame.
const MOTION_REFRESH_MS = 15_000;

const byId = (id) => document.getElementById(id);

async function start() {
  const [config, geofences] = await Promise.all([
    getJson("/dashboard/config.json"),
    getJson("/v1/geofences"),
  ]);
  const fleet = new Fleet(config.offline_after_s);
  const connection = byId("connection");

  const select = (deviceId) => {
    fleetMap.focus(deviceId, fleet);
    list.setSelected(deviceId);
    panel.open(deviceId);
  };
  const fleetMap = new FleetMap(byId("map"), config, { onSelect: select });
  fleetMap.drawGeofences(geofences.geofences);
  const list = new VehicleList(
    { list: byId("vehicle-list"), count: byId("vehicle-count"), search: byId("vehicle-search"), sort: byId("vehicle-sort") },
    fleet,
    { onSelect: select },
  );
  const alerts = new AlertFeed(byId("alert-feed"), fleet, { onSelect: select });
  const panel = new VehiclePanel({
    root: byId("vehicle-panel"),
    title: byId("panel-title"),
    close: byId("panel-close"),
    facts: byId("panel-facts"),
    charts: byId("panel-charts"),
    trips: byId("panel-trips"),
    playback: byId("playback"),
    playbackToggle: byId("playback-toggle"),
    playbackSlider: byId("playback-slider"),
    playbackSpeed: byId("playback-speed"),
    playbackTime: byId("playback-time"),
  }, fleet, fleetMap);

  fleet.addEventListener("vehicles", (change) => {
    fleetMap.update(change.detail, fleet);
    list.scheduleRender();
    panel.onVehicles(change.detail);
  });
  fleet.addEventListener("alerts", () => {
    alerts.scheduleRender();
    list.scheduleRender();
  });

  const nowMs = Date.now();
  const [vehicles, events] = await Promise.all([
    getJson("/v1/vehicles"),
    getJson(`/v1/events?from=${nowMs - HOUR_MS}&limit=${INITIAL_EVENTS_LIMIT}`),
  ]);
  fleet.addEvents(events.events.reverse());
  fleet.upsertVehicles(vehicles.vehicles);
  alerts.render();
  list.render();

  startKpis(byId("kpis"));
  setInterval(() => fleetMap.refreshMotion(fleet), MOTION_REFRESH_MS);
  const live = new LiveFeed(fleet, {
    liveAvailable: config.live_available,
    onState: (state) => {
      connection.dataset.state = state;
      connection.textContent = { live: "live", polling: "polling", offline: "server unreachable" }[state];
    },
  });
  live.start();
  // Tests and the load benchmark read the page's state through this handle.
  window.fleetpulse = { fleet, live, fleetMap, select };
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  console.error("fleetpulse: the dashboard failed to start:", error);
  byId("connection").dataset.state = "offline";
  byId("connection").textContent = "failed to start";
});
