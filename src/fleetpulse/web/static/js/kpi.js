// KPI tiles from GET /v1/fleet/summary, refreshed periodically.

import { getJson } from "./api.js";

const REFRESH_MS = 10_000;

/** Fill the tiles now and every REFRESH_MS. */
export function startKpis(container) {
  const tile = (name) => container.querySelector(`[data-kpi="${name}"] .kpi-value`);
  const refresh = async () => {
    try {
      const summary = await getJson("/v1/fleet/summary");
      for (const motion of ["moving", "idle", "parked", "offline"]) {
        tile(motion).textContent = summary.vehicles[motion].toLocaleString();
      }
      tile("alerts").textContent = summary.alerts_last_hour.toLocaleString();
      tile("distance").textContent = Math.round(summary.distance_today_m / 1000).toLocaleString();
      container.dataset.updatedAt = summary.generated_at;
    } catch (error) {
      console.warn("fleetpulse: fleet summary failed:", error.message);
    }
  };
  refresh();
  return setInterval(refresh, REFRESH_MS);
}
