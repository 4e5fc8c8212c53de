// Live updates: the WebSocket GET /v1/live, with HTTP polling while it is unavailable.

import { apiKey, askForKey, getJson } from "./api.js";

const RECONNECT_MIN_MS = 1000;
// Caps the retry rate against a server that is down, while still recovering within a minute.
const RECONNECT_MAX_MS = 30_000;
const POLL_EVENTS_MS = 2000;
// A full /v1/vehicles list is large for big fleets, so those are polled less often.
const POLL_VEHICLES_SMALL_MS = 2000;
const POLL_VEHICLES_LARGE_MS = 5000;
const LARGE_FLEET_VEHICLES = 500;
const POLL_EVENTS_LIMIT = 1000;
const LIVE_INTERVAL_S = 1.0;
// The server selects this subprotocol; the API key travels as a second one, because a
// browser cannot set an Authorization header on a WebSocket.
const SUBPROTOCOL = "fleetpulse";
const BEARER_SUBPROTOCOL_PREFIX = "fleetpulse.bearer.";
// Close codes of a rejected key, mirroring HTTP 401 and 403.
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;

/**
 * Feeds a Fleet from the server.
 *
 * With `liveAvailable` it connects to /v1/live and, after a drop, reconnects with
 * `after_event_id` set to the newest event id seen, so no event is missed. Until the
 * socket says hello, and whenever it is closed, it polls /v1/vehicles and
 * /v1/events?after_id=... instead. `onState` receives "live", "polling" or "offline".
 */
export class LiveFeed {
  constructor(fleet, { liveAvailable, onState }) {
    this.fleet = fleet;
    this.liveAvailable = liveAvailable;
    this.onState = onState;
    this.socket = null;
    this.reconnectMs = RECONNECT_MIN_MS;
    this.pollTimers = [];
    this.stats = { frames: 0, bytes: 0, vehicleFrames: 0, eventFrames: 0, skippedVehicleFrames: 0 };
  }

  start() {
    this.startPolling();
    if (this.liveAvailable) this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({
      after_event_id: String(this.fleet.lastEventId),
      interval_s: String(LIVE_INTERVAL_S),
    });
    const key = apiKey();
    const protocols = key ? [SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX + key] : [SUBPROTOCOL];
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}/v1/live?${query}`, protocols);
    } catch (error) {
      // A key with characters a subprotocol cannot carry (spaces, for example).
      console.warn("fleetpulse: cannot open the live stream:", error.message);
      askForKey("the key is not valid; paste the whole token printed by `fleetpulse keys create`")
        .then(() => this.connect());
      return;
    }
    this.socket = socket;
    socket.addEventListener("message", (message) => this.onMessage(message.data));
    socket.addEventListener("close", (close) => this.onClose(socket, close));
  }

  onMessage(data) {
    this.stats.frames += 1;
    this.stats.bytes += data.length;
    const frame = JSON.parse(data);
    switch (frame.type) {
      case "hello":
        this.reconnectMs = RECONNECT_MIN_MS;
        this.stopPolling();
        this.onState("live");
        break;
      case "vehicles":
        this.stats.vehicleFrames += 1;
        this.fleet.upsertVehicles(frame.vehicles);
        break;
      case "events":
        this.stats.eventFrames += 1;
        this.fleet.addEvents(frame.events);
        break;
      case "lagging":
        this.stats.skippedVehicleFrames += frame.skipped_vehicle_frames;
        break;
      default:
        console.warn("fleetpulse: ignoring unknown live frame type", frame.type);
    }
  }

  onClose(socket, close) {
    if (socket !== this.socket) return;
    this.socket = null;
    if (close.code === CLOSE_UNAUTHORIZED || close.code === CLOSE_FORBIDDEN) {
      this.startPolling();
      askForKey(close.reason || "the live stream needs an API key with scope read")
        .then(() => this.connect());
      return;
    }
    // 1013 (try again later) means this page fell behind; the others are drops or restarts.
    console.info(`fleetpulse: live stream closed (code ${close.code}); reconnecting`);
    this.startPolling();
    setTimeout(() => this.connect(), this.reconnectMs);
    this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT_MAX_MS);
  }

  startPolling() {
    if (this.pollTimers.length) return;
    this.onState("polling");
    const large = this.fleet.vehicles.size > LARGE_FLEET_VEHICLES;
    const vehiclesMs = large ? POLL_VEHICLES_LARGE_MS : POLL_VEHICLES_SMALL_MS;
    this.pollTimers = [
      setInterval(() => this.pollEvents(), POLL_EVENTS_MS),
      setInterval(() => this.pollVehicles(), vehiclesMs),
    ];
  }

  stopPolling() {
    for (const timer of this.pollTimers) clearInterval(timer);
    this.pollTimers = [];
  }

  async pollEvents() {
    try {
      // Reads forward by id until a page is not full, so a burst is not left behind.
      for (;;) {
        const path = `/v1/events?after_id=${this.fleet.lastEventId}&limit=${POLL_EVENTS_LIMIT}`;
        const page = await getJson(path);
        this.fleet.addEvents(page.events);
        if (page.events.length < POLL_EVENTS_LIMIT) break;
      }
      if (!this.socket) this.onState("polling");
    } catch (error) {
      this.onState("offline");
      console.warn("fleetpulse: polling events failed:", error.message);
    }
  }

  async pollVehicles() {
    try {
      const page = await getJson("/v1/vehicles");
      this.fleet.upsertVehicles(page.vehicles);
    } catch (error) {
      this.onState("offline");
      console.warn("fleetpulse: polling vehicles failed:", error.message);
    }
  }
}
