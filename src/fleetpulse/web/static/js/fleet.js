// The page's copy of the fleet: latest vehicle views and recent alerts, with change events.

const STATUS_RANK = { alert: 2, warning: 1, normal: 0 };
// Alerts are the events a fleet manager acts on; info events (trips, ignition) are routine.
const ALERT_SEVERITIES = new Set(["warning", "critical"]);
// Alerts counted per vehicle for sorting, and kept for the feed.
const ALERT_WINDOW_MS = 3_600_000;
const MAX_ALERTS_KEPT = 500;

export function isAlert(event) {
  return ALERT_SEVERITIES.has(event.severity);
}

export function statusRank(status) {
  return STATUS_RANK[status] ?? 0;
}

/**
 * Vehicles by device id and alerts by event id.
 *
 * Dispatches "vehicles" (detail: the views that changed) and "alerts" (detail: the alert
 * events that were added or updated).
 */
export class Fleet extends EventTarget {
  constructor(offlineAfterS) {
    super();
    this.offlineAfterMs = offlineAfterS * 1000;
    this.vehicles = new Map();
    this.alerts = new Map();
    this.lastEventId = 0;
  }

  /** Store the newest views; a view older than the one held is ignored. */
  upsertVehicles(views) {
    const changed = [];
    for (const view of views) {
      const held = this.vehicles.get(view.device_id);
      if (held && held.last_received_at_ms > view.last_received_at_ms) continue;
      if (held && held.last_received_at_ms === view.last_received_at_ms
          && held.motion === view.motion && held.status === view.status) continue;
      this.vehicles.set(view.device_id, view);
      changed.push(view);
    }
    if (changed.length) this.dispatchEvent(new CustomEvent("vehicles", { detail: changed }));
    return changed.length;
  }

  /** Store events in id order; repeated ids replace the details (an episode that ended). */
  addEvents(events) {
    const alerts = [];
    for (const event of events) {
      if (event.id > this.lastEventId) this.lastEventId = event.id;
      if (!isAlert(event)) continue;
      this.alerts.set(event.id, event);
      alerts.push(event);
    }
    this.trimAlerts();
    if (alerts.length) this.dispatchEvent(new CustomEvent("alerts", { detail: alerts }));
  }

  trimAlerts() {
    if (this.alerts.size <= MAX_ALERTS_KEPT) return;
    const oldest = [...this.alerts.keys()].sort((a, b) => a - b);
    for (const id of oldest.slice(0, this.alerts.size - MAX_ALERTS_KEPT)) this.alerts.delete(id);
  }

  /** Return the motion to show: "offline" once nothing arrived for offline_after_s. */
  motionOf(view, nowMs = Date.now()) {
    if (view.offline || nowMs - view.last_received_at_ms > this.offlineAfterMs) return "offline";
    return view.motion;
  }

  /** Count each vehicle's alerts of the last hour. */
  alertCounts(nowMs = Date.now()) {
    const counts = new Map();
    for (const event of this.alerts.values()) {
      if (nowMs - event.ts_ms > ALERT_WINDOW_MS) continue;
      counts.set(event.device_id, (counts.get(event.device_id) ?? 0) + 1);
    }
    return counts;
  }
}
