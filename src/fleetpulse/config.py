"""Settings: one typed, frozen object loaded from a TOML file and ``FLEETPULSE_*`` variables.

Every key is documented with its unit and default in ``docs/configuration.md``. An
environment variable ``FLEETPULSE_<SECTION>_<KEY>`` overrides ``[section] key`` in the
file, for example ``FLEETPULSE_INGEST_MAX_BODY_BYTES=1048576``.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from fleetpulse.errors import ConfigError

log = logging.getLogger(__name__)

ENV_PREFIX = "FLEETPULSE_"


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Listen address, data folder and log level of ``fleetpulse run``."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "fleetpulse-data"
    log_level: str = "info"
    # Without [auth] enabled, a host other than loopback stops the start unless this is
    # true, because anyone who reaches the address could send and read telemetry.
    allow_unauthenticated: bool = False
    # PEM files for HTTPS; both empty serves plain HTTP.
    tls_cert_file: str = ""
    tls_key_file: str = ""


class IngestSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits and clock checks applied to every incoming record."""

    # 16 MiB fits a batch of 10,000 records with room for attributes.
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch_records: int = 10_000
    # Device clocks drift; five minutes absorbs drift without accepting a wrong date.
    max_future_skew_s: float = 300.0
    max_age_days: float = 30.0
    max_attributes: int = 64
    max_attributes_bytes: int = 4096
    max_attributes_depth: int = 4
    # How much of a rejected record the dead-letter store keeps.
    dead_letter_raw_bytes: int = 2048
    # Seconds sent in Retry-After when the queue is full: how long a client should wait.
    retry_after_s: int = 1
    # Bytes of HTTP request bodies being read, decoded or published at once. Beyond it a
    # request gets 503 overloaded, which bounds ingest memory under a surge.
    max_inflight_bytes: int = 64 * 1024 * 1024
    # Seconds a client has to send the whole body of POST /v1/telemetry; then 408. Bounds
    # how long a slow or stalled client keeps a connection and its received bytes.
    body_timeout_s: float = 30.0
    # Token bucket per device id over every protocol: records per second and bucket size.
    # 0 records/s turns the limit off.
    device_rate_records_per_s: float = 0.0
    device_burst_records: int = 600


class QueueSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The message queue between ingest and processing."""

    # "sqlite": queue.db in server.data_dir. "jetstream": a NATS JetStream stream (see
    # [nats]) that several ingest and process processes share.
    backend: Literal["sqlite", "jetstream"] = "sqlite"
    # Bounded so a burst turns into back-pressure (503) instead of memory or disk growth.
    capacity_records: int = 2_000_000
    # "full" survives power loss; "normal" survives a process crash and is faster.
    synchronous: Literal["full", "normal"] = "full"
    # Records per processing round at most. Larger rounds write each vehicle's row and
    # the index pages it touches once per round, which costs less per record when the
    # queue has a backlog.
    fetch_max_records: int = 20_000
    # JetStream only: vehicles are spread over this many partitions, the unit that one
    # processor owns. Fixed for the life of a stream, because it maps vehicles to subjects.
    partitions: int = 16


class NatsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The NATS server of the JetStream queue (``[queue] backend = "jetstream"``)."""

    # User and password may be in the URL; fleetpulse logs the URL without them.
    url: str = "nats://127.0.0.1:4222"
    connect_timeout_s: float = 5.0
    # Timeout of each publish, acknowledgement and JetStream API request.
    request_timeout_s: float = 5.0
    # Attempts of one publish, with the same message id, before ingest gets an error.
    publish_attempts: int = 3
    stream: str = "fleetpulse-records"
    # Records of partition p go to subject "<subject_prefix>.<p>".
    subject_prefix: str = "fleetpulse.records"
    # JetStream drops a message whose Nats-Msg-Id it stored this recently, so a retried
    # publish is stored once.
    duplicate_window_s: float = 120.0
    # The stream rejects publishes at this size, and ingest then responds 503.
    max_stream_bytes: int = 1024 * 1024 * 1024
    # A message handed out and not acknowledged for this long is delivered again.
    ack_wait_s: float = 30.0
    # A processor that stops renewing its partition leases loses them after this long,
    # and another processor takes the partitions over.
    lease_ttl_s: float = 6.0
    # Messages requested per partition at once, which bounds what a processor buffers.
    pull_batch: int = 64
    # How often depth() re-reads the stream's message count from the server.
    depth_refresh_s: float = 1.0


class StoreSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The store of records, events, trips, vehicle state and dead letters."""

    # "sqlite": store.db in server.data_dir. "postgres": the server of [postgres] dsn,
    # which several processes can write at once.
    backend: Literal["sqlite", "postgres"] = "sqlite"
    retention_days: float = 90.0
    # "full" because the processor acknowledges the queue once the store commit returns:
    # a store commit lost to a power cut would lose records the queue already deleted.
    synchronous: Literal["full", "normal"] = "full"


class PostgresSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The PostgreSQL store, used when ``[store] backend = "postgres"``."""

    # libpq-style URI. A password may be in it, or in PGPASSWORD or ~/.pgpass instead.
    dsn: str = "postgresql://fleetpulse@127.0.0.1:5432/fleetpulse"
    pool_min_size: int = 2
    pool_max_size: int = 10
    connect_timeout_s: float = 10.0
    # The server cancels a statement that runs longer, so a stuck query fails the call.
    statement_timeout_s: float = 60.0
    # Width of one records partition. Retention drops whole partitions.
    partition_days: int = 7
    # Partitions created beyond the one a write needs, so most writes need no DDL.
    partitions_ahead: int = 2
    # False: start() rejects an old schema and `fleetpulse db upgrade` migrates it.
    auto_upgrade: bool = False


class ProcessSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The processing engine's batching and timers."""

    # A vehicle with no record for this long is reported offline.
    offline_after_s: float = 600.0
    # How often the processor looks for vehicles that went offline.
    offline_check_interval_s: float = 10.0
    # `fleetpulse run` processes in a child OS process, so processing gets its own core.
    # Only with the SQLite queue; other backends keep the processor in the server process.
    child_process: bool = True


class DetectorSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Thresholds of the enrichment steps and detectors, explained in ``docs/detectors.md``."""

    moving_speed_kmh: float = 5.0
    stationary_radius_m: float = 25.0
    parked_after_s: float = 300.0
    gps_jump_speed_kmh: float = 300.0
    gps_jump_min_distance_m: float = 200.0
    overspeed_limit_kmh: float = 120.0
    overspeed_min_duration_s: float = 10.0
    overspeed_hysteresis_kmh: float = 5.0
    harsh_braking_mps2: float = 3.5
    harsh_acceleration_mps2: float = 3.0
    harsh_max_interval_s: float = 3.0
    idle_after_s: float = 300.0
    coolant_overheat_c: float = 105.0
    coolant_recover_c: float = 100.0
    low_fuel_pct: float = 10.0
    low_fuel_recover_pct: float = 15.0
    fuel_drop_pct: float = 8.0
    low_battery_v: float = 11.8
    low_battery_recover_v: float = 12.2
    trip_end_stop_s: float = 300.0
    trip_min_distance_m: float = 200.0
    # Fleet-wide service intervals; 0 turns one off. [vehicles."ID"] may override both.
    service_every_km: float = 0.0
    service_every_engine_h: float = 0.0
    # Detectors left out of the processing chain, by name (see process/chain.py).
    disabled: list[str] = []


class VehicleSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Overrides for one vehicle, keyed by device id in ``[vehicles."ID"]``."""

    overspeed_limit_kmh: float | None = None
    name: str | None = None
    service_every_km: float | None = None
    service_every_engine_h: float | None = None


class Geofence(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A circle (``lat``, ``lon``, ``radius_m``) or a polygon (``polygon``: [[lat, lon], ...])."""

    id: str
    name: str = ""
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    polygon: list[tuple[float, float]] | None = None


class TeltonikaSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The Teltonika TCP listener (Codec 8, 8 Extended and 16)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    # 5027 is the port Teltonika's configurator and most tracking servers use.
    port: int = 5027
    # IMEIs of the devices allowed to connect. Empty: see allow_unknown_imeis.
    allowed_imeis: list[str] = []
    # False accepts an IMEI outside allowed_imeis only while the list is empty and the
    # listener is bound to loopback, so local tests work and a public listener is closed.
    allow_unknown_imeis: bool = False
    # IO element mapping per device, by IMEI: "fmb" or "raw" (every element in attributes).
    device_models: dict[str, str] = {}
    default_model: str = "fmb"
    # 255 records of about 250 bytes each; a larger length field means a corrupt stream.
    max_frame_bytes: int = 65_536
    # A device sends its IMEI right after it connects.
    handshake_timeout_s: float = 30.0
    # A connection with no data for this long is closed; the device reconnects when it
    # next has records.
    idle_timeout_s: float = 600.0
    log_frames: bool = False
    # Raw frames logged per second at most, when log_frames is on.
    log_frames_per_s: int = 10
    # PEM files for TLS; both empty accepts plain TCP.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Open connections at most, and per remote address (0: no per-address limit, because
    # carrier-grade NAT puts many devices behind one address).
    max_connections: int = 10_000
    max_connections_per_address: int = 0


class OsmandSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The OsmAnd HTTP listener, as Traccar Client and the OsmAnd app send."""

    enabled: bool = False
    host: str = "127.0.0.1"
    # 5055 is the OsmAnd port of Traccar, so devices set up for Traccar need no change.
    port: int = 5055
    # Traccar Client sends knots; the OsmAnd app sends m/s.
    speed_unit: Literal["knots", "kmh", "mps"] = "knots"
    log_frames: bool = False
    # PEM files for HTTPS; both empty serves plain HTTP.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # With [auth] enabled, true requires a device token in every request. False also
    # accepts a request without one from a device id that has a device key.
    require_token: bool = False
    # Connections and requests in progress at most; beyond it uvicorn responds with 503.
    max_connections: int = 1000


class MqttSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The MQTT subscriber that takes records from a broker."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: Literal["3.1.1", "5"] = "5"
    topic: str = "fleet/{device_id}/telemetry"
    # Empty subscribes to the topic itself; a name subscribes to $share/<name>/<topic>.
    shared_group: str = "fleetpulse"
    # Fixed so that the broker keeps the session, and unacknowledged messages, across
    # restarts. Two processes must not share one client id, or each one disconnects the other.
    client_id: str = "fleetpulse-ingest"
    # How long the broker keeps the session and its messages while fleetpulse is away.
    session_expiry_s: int = 3600
    username: str = ""
    password: str = ""
    keepalive_s: int = 60
    reconnect_min_delay_s: int = 1
    reconnect_max_delay_s: int = 60
    # Messages the broker may send before one is acknowledged (MQTT 5 Receive Maximum),
    # which is also the largest batch published to the queue at once.
    receive_maximum: int = 100
    log_frames: bool = False


class WebSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The web dashboard served at ``/``."""

    # Empty draws the map without background tiles, so the dashboard needs no internet.
    tile_url: str = ""
    tile_attribution: str = ""


class LiveSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The live stream ``GET /v1/live``: position coalescing and per-client bounds."""

    # One frame per second per client keeps a map smooth without sending every record.
    interval_s: float = 1.0
    # Events a client may have waiting before it is disconnected with close code 1013.
    max_buffered_events: int = 10_000
    # Each client costs a sender task and its buffers, so their number is bounded.
    max_clients: int = 100
    # How stored batches reach the live hub: "local" is a call inside one process, and
    # "nats" a NATS subject between process and API processes. "auto" picks "nats" when
    # the queue is JetStream.
    bus: Literal["auto", "local", "nats"] = "auto"
    # NATS core subject of the "nats" bus. Deployments that share a NATS server need one each.
    subject: str = "fleetpulse.live"


class NotifyRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[notify.rules]]`` entry: which events to send, and to which webhook or inboxes.

    Empty filter lists match everything. ``active_from`` and ``active_to`` are "HH:MM" in
    ``timezone``; both empty means all day, and a window may wrap past midnight.
    """

    id: str
    event_types: list[str] = []
    min_severity: Literal["info", "warning", "critical"] = "info"
    vehicles: list[str] = []
    geofences: list[str] = []
    active_from: str = ""
    active_to: str = ""
    timezone: str = "UTC"
    webhook_url: str = ""
    # Key of the X-Fleetpulse-Signature HMAC; empty sends no signature.
    webhook_secret: str = ""
    email_to: list[str] = []
    # At most one notification per vehicle and rule in this many seconds.
    throttle_s: float = 300.0


class NotifySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Delivery of events to webhooks and e-mail, described in ``docs/notifications.md``."""

    # Events waiting for delivery; more are dropped and counted, so processing never waits.
    queue_capacity: int = 10_000
    # Deliveries in flight at once, so one slow receiver cannot hold up every other one.
    max_concurrent: int = 16
    # Attempts per delivery before it is dead-lettered.
    max_attempts: int = 5
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    timeout_s: float = 10.0
    # Dead-lettered deliveries kept in memory for GET /v1/notify/dead-letters.
    max_dead_letters: int = 1000
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = ""
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    rules: list[NotifyRule] = []


class AuthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """API keys and device tokens, described in ``docs/security.md``."""

    enabled: bool = False
    # JSON file of key hashes, written by `fleetpulse keys`; empty: keys.json in data_dir.
    key_file: str = ""
    # True serves GET /metrics without a key, for a scraper on a trusted network.
    metrics_public: bool = False


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """All settings of a fleetpulse process."""

    server: ServerSettings = ServerSettings()
    ingest: IngestSettings = IngestSettings()
    queue: QueueSettings = QueueSettings()
    store: StoreSettings = StoreSettings()
    postgres: PostgresSettings = PostgresSettings()
    process: ProcessSettings = ProcessSettings()
    detectors: DetectorSettings = DetectorSettings()
    teltonika: TeltonikaSettings = TeltonikaSettings()
    osmand: OsmandSettings = OsmandSettings()
    mqtt: MqttSettings = MqttSettings()
    web: WebSettings = WebSettings()
    live: LiveSettings = LiveSettings()
    notify: NotifySettings = NotifySettings()
    auth: AuthSettings = AuthSettings()
    nats: NatsSettings = NatsSettings()
    vehicles: dict[str, VehicleSettings] = {}
    geofences: list[Geofence] = []

    def overspeed_limit_kmh(self, device_id: str) -> float:
        """Return the speed limit of one vehicle: its own if configured, else the global one."""
        vehicle = self.vehicles.get(device_id)
        if vehicle is not None and vehicle.overspeed_limit_kmh is not None:
            return vehicle.overspeed_limit_kmh
        return self.detectors.overspeed_limit_kmh


SECTIONS = (
    "server",
    "ingest",
    "queue",
    "store",
    "postgres",
    "process",
    "detectors",
    "teltonika",
    "osmand",
    "mqtt",
    "web",
    "live",
    "notify",
    "auth",
    "nats",
)


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Load settings from a TOML file, then ``FLEETPULSE_*`` variables, then ``overrides``.

    Raises ConfigError naming the bad key and the expected type.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} not found; pass an existing --config") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    env = os.environ if environ is None else environ
    env_names = _apply_environment(data, env)
    overridden: set[tuple[str, str]] = set()
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
        overridden.update((section, key) for key in values)
    _validate_geofences(data.get("geofences", []))
    try:
        settings = msgspec.convert(data, Settings, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(_invalid_setting_message(exc, path, env_names, overridden)) from exc
    return settings


_ERROR_PATH = re.compile(r" - at `\$\.(\w+)\.(\w+)")


def _invalid_setting_message(
    exc: msgspec.ValidationError,
    path: str | Path | None,
    env_names: Mapping[tuple[str, str], str],
    overridden: set[tuple[str, str]],
) -> str:
    """Name the invalid key, where its value came from, and a valid value (the default)."""
    detail = str(exc)
    match = _ERROR_PATH.search(detail)
    if match is None:
        where = f"in {path}" if path else "in the environment"
        return f"invalid setting {where}: {detail}"
    section, key = match.group(1), match.group(2)
    problem = detail[: match.start()]
    if (section, key) in overridden:
        origin = "from a command-line option"
    elif (section, key) in env_names:
        origin = f"from the environment variable {env_names[section, key]}"
    elif path is not None:
        origin = f"in {path}"
    else:
        origin = "in the settings"
    default = getattr(getattr(Settings(), section, None), key, None)
    fix = f"; set a valid value, for example the default {default!r}" if default is not None else ""
    return (
        f"invalid setting [{section}] {key} {origin}: {problem}{fix}. "
        "docs/configuration.md lists every key with its type and unit"
    )


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, str], str]:
    """Copy ``FLEETPULSE_*`` variables into ``data``; return each (section, key)'s variable."""
    names: dict[tuple[str, str], str] = {}
    fields = {name: _section_fields(name) for name in SECTIONS}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue
        key = rest[len(section) + 1 :]
        if key not in fields[section]:
            raise ConfigError(
                f"{name} names no setting; [{section}] has: {', '.join(sorted(fields[section]))}"
            )
        data.setdefault(section, {})[key] = _parse_env_value(raw)
        names[section, key] = name
        log.debug("setting %s.%s from %s", section, key, name)
    return names


def _section_fields(section: str) -> set[str]:
    struct_type = type(getattr(Settings(), section))
    return set(struct_type.__struct_fields__)


def _parse_env_value(raw: str) -> Any:
    # TOML literal syntax lets FLEETPULSE_X=10, =2.5, =true and ="text" keep their types;
    # anything that is not a TOML value is taken as a bare string.
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _validate_geofences(geofences: Any) -> None:
    if not isinstance(geofences, list):
        raise ConfigError("geofences must be an array of tables: [[geofences]]")
    for fence in geofences:
        if not isinstance(fence, dict):
            raise ConfigError("each [[geofences]] entry must be a table")
        is_circle = all(fence.get(k) is not None for k in ("lat", "lon", "radius_m"))
        polygon = fence.get("polygon")
        if is_circle == (polygon is not None):
            raise ConfigError(
                f"geofence {fence.get('id')!r} must have either lat, lon and radius_m "
                "(a circle) or polygon (a list of at least 3 [lat, lon] points)"
            )
        if polygon is not None and len(polygon) < 3:
            raise ConfigError(f"geofence {fence.get('id')!r}: a polygon needs at least 3 points")
