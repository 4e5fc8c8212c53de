"""Load benchmark of MQTT ingest: publishers -> Mosquitto -> ``fleetpulse run``.

Starts its own Mosquitto on a free 127.0.0.1 port and ``fleetpulse run`` with ``[mqtt]``
enabled against it (a server child with a fresh data folder, default settings otherwise).
Publisher clients in this process send pre-encoded JSON records at QoS 1 to
``fleet/{device_id}/telemetry``, as fast as the pipeline takes them. Linux only.

Three rates come out of one window: records PUBACKed by the broker to the publishers,
records that fleetpulse accepted (durable in its queue, then PUBACKed by fleetpulse to
the broker: ``fleetpulse_records_accepted_total``), and records processed and stored.
The broker acknowledges a publisher as soon as it has the message, so the publishers
keep at most ``--window`` records published and not yet accepted by fleetpulse. This
way the broker's backlog stays bounded and the publishers follow fleetpulse's pace, as
HTTP clients follow the responses.

    .venv/bin/python benchmarks/mqtt_load.py --duration 20
    .venv/bin/python benchmarks/mqtt_load.py --records-per-message 100 --json mqtt.json
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fleet_payloads import BenchRecord, build_records
from http_load import show_progress
from load_report import percentile
from mosquitto_broker import MosquittoBroker, find_mosquitto
from server_child import ServerChild, machine_busy_s, tree_cpu_s

log = logging.getLogger("mqtt_load")

TOPIC = "fleet/{device_id}/telemetry"
METRIC_ACCEPTED = "fleetpulse_records_accepted_total"
METRIC_PROCESSED = "fleetpulse_records_processed_total"
METRIC_QUEUE_DEPTH = "fleetpulse_queue_depth_records"
MAX_DURATION_S = 300.0
# Messages and records per second the pool is sized for: above what one fleetpulse
# process took over MQTT in trials on a 2-core machine (about 6,000 messages/s of one
# record, 40,000 records/s in messages of 100). A faster server empties the pool early,
# and the report then warns.
POOL_MESSAGES_PER_S = 15_000
POOL_RPS = 100_000
# Messages a publisher may have sent and not yet seen PUBACKed by the broker. Below
# 65,535, so that a message id is never in use twice at once.
MAX_UNACKED_MESSAGES = 100
CONNECT_TIMEOUT_S = 10.0
# How long fleetpulse may take to connect and subscribe before the first probe passes.
SUBSCRIBE_TIMEOUT_S = 30.0
METRICS_INTERVAL_S = 0.05
PROBE_DEVICE = "mqtt-probe"
EXIT_NO_BROKER = 3


@dataclass
class MqttOptions:
    """One run. ``window_records`` bounds records published and not yet accepted."""

    duration_s: float = 20.0
    records_per_message: int = 1
    vehicles: int = 1000
    publishers: int = 2
    window_records: int = 5_000
    receive_maximum: int | None = None
    omit_device_id: bool = False
    settle_s: float = 30.0
    pool_records: int | None = None
    seed: int = 1
    label: str = ""
    command: list[str] = field(default_factory=list)

    def pool_size(self) -> int:
        """Return the number of records pre-encoded over all publishers."""
        if self.pool_records is not None:
            return self.pool_records
        rate_rps = min(POOL_RPS, POOL_MESSAGES_PER_S * self.records_per_message)
        return int(rate_rps * self.duration_s)


class MqttReport(msgspec.Struct):
    """Everything one MQTT run measured. Rates are records/s over the load window."""

    label: str
    command: str
    duration_s: float
    vehicles: int
    records_per_message: int
    publishers: int
    window_records: int
    messages_published: int
    records_published: int
    pubacked_rps: float
    accepted_rps: float
    processed_rps: float
    puback_p50_ms: float | None
    puback_p99_ms: float | None
    queue_depth_end: int
    # Records published in the window that fleetpulse had not accepted ``settle_s`` after
    # it: lost, or still held by the broker when the wait ended.
    records_not_accepted: int
    settle_s: float
    # The server and its child processes: CPU summed, and each one's peak RSS summed.
    server_cpu_pct: float
    server_peak_rss_mib: float
    broker_cpu_pct: float
    load_cpu_pct: float
    other_cpu_pct: float
    pool_exhausted: bool
    errors: list[str]


@dataclass
class Publisher:
    """One MQTT client and the pre-encoded messages it sends, with what happened to them."""

    index: int
    messages: list[tuple[str, bytes, int]]
    client: paho.Client | None = None
    sent: list[tuple[int, float]] = field(default_factory=list)
    acked: list[tuple[int, float]] = field(default_factory=list)
    records_sent: int = 0
    exhausted: bool = False
    error: str = ""

    def unacked(self) -> int:
        """Return the messages sent and not yet PUBACKed by the broker."""
        return len(self.sent) - len(self.acked)


@dataclass
class Progress:
    """The newest accepted count from /metrics, read by the publishers to pace themselves."""

    accepted_total: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)


def build_messages(options: MqttOptions) -> list[list[tuple[str, bytes, int]]]:
    """Pre-encode each publisher's messages: (topic, payload, record count), in order.

    Each publisher owns every ``publishers``-th vehicle, and each message contains
    ``records_per_message`` consecutive records of one vehicle, so every vehicle's
    records reach fleetpulse in device-time order.
    """
    device_ids = [f"mqtt-{index:06d}" for index in range(options.vehicles)]
    per_publisher = -(-options.pool_size() // options.publishers)
    encoder = msgspec.json.Encoder()
    plans = []
    for index in range(options.publishers):
        own_ids = device_ids[index :: options.publishers]
        records = build_records(own_ids, per_publisher, options.seed + index)
        by_vehicle: dict[str, list[BenchRecord]] = {device_id: [] for device_id in own_ids}
        for record in records:
            by_vehicle[record.device_id].append(record)
        messages = []
        size = options.records_per_message
        rounds = -(-max(len(chunk) for chunk in by_vehicle.values()) // size)
        for round_index in range(rounds):
            for device_id, vehicle_records in by_vehicle.items():
                chunk = vehicle_records[round_index * size : (round_index + 1) * size]
                if chunk:
                    payload = _encode(encoder, chunk, size == 1, options.omit_device_id)
                    messages.append((TOPIC.format(device_id=device_id), payload, len(chunk)))
        plans.append(messages)
    return plans


def _encode(
    encoder: msgspec.json.Encoder, chunk: list[BenchRecord], single: bool, omit_id: bool
) -> bytes:
    if not omit_id:
        return encoder.encode(chunk[0] if single else chunk)
    # A device that publishes to its own topic may leave device_id out. fleetpulse then
    # takes it from the topic, at the cost of one more JSON parse per message.
    documents = []
    for record in chunk:
        document = msgspec.structs.asdict(record)
        del document["device_id"]
        documents.append(document)
    return encoder.encode(documents[0] if single else documents)


def connect(publisher: Publisher, broker: MosquittoBroker) -> None:
    """Connect the publisher's client (MQTT 5, clean start) and start its network thread."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-publisher-{os.getpid()}-{publisher.index}",
        protocol=paho.MQTTv5,
    )
    client.max_inflight_messages_set(MAX_UNACKED_MESSAGES)
    client.max_queued_messages_set(0)
    connected = threading.Event()

    def on_connect(*_: object) -> None:
        connected.set()

    def on_publish(_client: object, _userdata: object, mid: int, *_: object) -> None:
        # Runs in paho's network thread; list.append is atomic under the GIL.
        publisher.acked.append((mid, time.perf_counter()))

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    if not connected.wait(CONNECT_TIMEOUT_S):
        client.loop_stop()
        raise RuntimeError(f"publisher {publisher.index} did not connect to "
                           f"{broker.host}:{broker.port} in {CONNECT_TIMEOUT_S:g} s")
    publisher.client = client


def publish_until(
    publisher: Publisher,
    publishers: list[Publisher],
    progress: Progress,
    accepted_before: float,
    window_records: int,
    end_s: float,
) -> None:
    """Send the publisher's messages until ``end_s`` (monotonic) or the pool runs out.

    Waits while the publisher has ``MAX_UNACKED_MESSAGES`` unacknowledged messages, or
    while all publishers together are ``window_records`` ahead of fleetpulse.
    """
    client = publisher.client
    assert client is not None
    try:
        for topic, payload, count in publisher.messages:
            while True:
                if time.monotonic() >= end_s:
                    return
                sent = sum(other.records_sent for other in publishers)
                ahead = sent - (progress.accepted_total - accepted_before)
                if publisher.unacked() < MAX_UNACKED_MESSAGES and ahead < window_records:
                    break
                time.sleep(0.001)
            info = client.publish(topic, payload, qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                publisher.error = f"publish to {topic} failed: {paho.error_string(info.rc)}"
                return
            publisher.sent.append((info.mid, time.perf_counter()))
            publisher.records_sent += count
        publisher.exhausted = True
    except Exception as exc:  # reported in the run's errors, so the run still ends
        publisher.error = f"publisher {publisher.index} failed: {exc!r}"


def puback_latencies_s(publisher: Publisher) -> list[float]:
    """Pair each sent message with its PUBACK (the k-th use of a message id with its k-th
    acknowledgement) and return the latencies in seconds."""
    sends: dict[int, list[float]] = {}
    for mid, sent_at in publisher.sent:
        sends.setdefault(mid, []).append(sent_at)
    latencies = []
    seen: dict[int, int] = {}
    for mid, acked_at in list(publisher.acked):
        index = seen.get(mid, 0)
        seen[mid] = index + 1
        times = sends.get(mid, [])
        if index < len(times):
            latencies.append(acked_at - times[index])
    return latencies


def follow_metrics(server: ServerChild, progress: Progress) -> None:
    """Keep ``progress.accepted_total`` current until ``progress.stop`` is set."""
    with httpx.Client() as client:
        while not progress.stop.is_set():
            try:
                progress.accepted_total = server.metrics(client).get(METRIC_ACCEPTED, 0.0)
            except httpx.HTTPError as exc:
                log.warning("metrics scrape failed url=%s: %s", server.url, exc)
            progress.stop.wait(METRICS_INTERVAL_S)


def wait_subscribed(server: ServerChild, broker: MosquittoBroker, client: httpx.Client) -> None:
    """Publish a probe record every 0.5 s until fleetpulse has accepted one.

    A message published before fleetpulse subscribes is dropped by the broker, so the
    load must not start earlier.
    """
    probe = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    probe.connect(broker.host, broker.port)
    probe.loop_start()
    try:
        deadline_s = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        while time.monotonic() < deadline_s:
            now_ms = time.time_ns() // 1_000_000
            payload = msgspec.json.encode({"ts": now_ms, "lat": 48.1, "lon": 11.5})
            probe.publish(TOPIC.format(device_id=PROBE_DEVICE), payload, qos=1)
            time.sleep(0.5)
            if server.metrics(client).get(METRIC_ACCEPTED, 0.0) > 0:
                return
    finally:
        probe.disconnect()
        probe.loop_stop()
    raise RuntimeError(
        f"fleetpulse accepted no probe record over MQTT within {SUBSCRIBE_TIMEOUT_S:g} s; "
        f"see the server log in {server.log_path}"
    )


def run_mqtt_benchmark(options: MqttOptions) -> MqttReport:
    """Start Mosquitto and a server child, run the load, stop everything, return the report.

    Raises FileNotFoundError when mosquitto is not installed.
    """
    if not 0 < options.duration_s <= MAX_DURATION_S:
        raise ValueError(f"--duration must be in (0, {MAX_DURATION_S:g}] s, not "
                         f"{options.duration_s}")
    if options.vehicles < options.publishers or options.records_per_message < 1:
        raise ValueError("--vehicles must be at least --publishers, and "
                         "--records-per-message at least 1")
    binary = find_mosquitto()
    if binary is None:
        raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")

    print(f"building {options.pool_size():,} records for {options.publishers} publisher(s)",
          file=sys.stderr)
    publishers = [
        Publisher(index, messages) for index, messages in enumerate(build_messages(options))
    ]
    with MosquittoBroker(binary) as broker:
        env = {
            "FLEETPULSE_MQTT_ENABLED": "true",
            "FLEETPULSE_MQTT_HOST": f'"{broker.host}"',
            "FLEETPULSE_MQTT_PORT": str(broker.port),
            "FLEETPULSE_MQTT_CLIENT_ID": f'"fleetpulse-bench-{os.getpid()}"',
        }
        if options.receive_maximum is not None:
            env["FLEETPULSE_MQTT_RECEIVE_MAXIMUM"] = str(options.receive_maximum)
        with ServerChild("info", env=env) as server:
            print(f"server pid={server.pid} url={server.url} mosquitto pid={broker.pid} "
                  f"port={broker.port}", file=sys.stderr)
            try:
                for publisher in publishers:
                    connect(publisher, broker)
                return _run_window(options, server, broker, publishers)
            finally:
                for publisher in publishers:
                    if publisher.client is not None:
                        publisher.client.disconnect()
                        publisher.client.loop_stop()


def _run_window(
    options: MqttOptions, server: ServerChild, broker: MosquittoBroker, publishers: list[Publisher]
) -> MqttReport:
    with httpx.Client() as client:
        wait_subscribed(server, broker, client)
        before = server.metrics(client)
        progress = Progress(accepted_total=before.get(METRIC_ACCEPTED, 0.0))
        follower = threading.Thread(target=follow_metrics, args=(server, progress), daemon=True)
        follower.start()

        server_cpu_before_s = server.cpu_s()
        broker_cpu_before_s = tree_cpu_s(broker.pid)
        machine_before_s = machine_busy_s()
        load_before_s = time.process_time()
        end_s = time.monotonic() + options.duration_s
        threads = [
            threading.Thread(
                target=publish_until,
                args=(publisher, publishers, progress, progress.accepted_total,
                      options.window_records, end_s),
                name=f"publisher-{publisher.index}",
            )
            for publisher in publishers
        ]
        for thread in threads:
            thread.start()
        show_progress(server, client, end_s, before)
        for thread in threads:
            thread.join()

        after = server.metrics(client)
        server_cpu_s = server.cpu_s() - server_cpu_before_s
        broker_cpu_s = tree_cpu_s(broker.pid) - broker_cpu_before_s
        load_cpu_s = time.process_time() - load_before_s
        machine_s = machine_busy_s() - machine_before_s
        progress.stop.set()
        follower.join()

        records_published = sum(publisher.records_sent for publisher in publishers)
        accepted_before = before.get(METRIC_ACCEPTED, 0.0)
        settled = _settle(server, client, accepted_before + records_published, options.settle_s)
        peak_rss_mib = server.peak_rss_mib()

    duration_s = options.duration_s
    latencies = [value for publisher in publishers for value in puback_latencies_s(publisher)]
    pubacked = sum(
        count
        for publisher in publishers
        for count in _acked_records(publisher)
    )
    return MqttReport(
        label=options.label,
        command=" ".join(options.command),
        duration_s=duration_s,
        vehicles=options.vehicles,
        records_per_message=options.records_per_message,
        publishers=options.publishers,
        window_records=options.window_records,
        messages_published=sum(len(publisher.sent) for publisher in publishers),
        records_published=records_published,
        pubacked_rps=pubacked / duration_s,
        accepted_rps=(after.get(METRIC_ACCEPTED, 0.0) - accepted_before) / duration_s,
        processed_rps=(after.get(METRIC_PROCESSED, 0.0) - before.get(METRIC_PROCESSED, 0.0))
        / duration_s,
        puback_p50_ms=_ms(percentile(latencies, 0.50)),
        puback_p99_ms=_ms(percentile(latencies, 0.99)),
        queue_depth_end=int(after.get(METRIC_QUEUE_DEPTH, 0.0)),
        records_not_accepted=max(0, int(accepted_before + records_published - settled)),
        settle_s=options.settle_s,
        server_cpu_pct=100.0 * server_cpu_s / duration_s,
        server_peak_rss_mib=peak_rss_mib,
        broker_cpu_pct=100.0 * broker_cpu_s / duration_s,
        load_cpu_pct=100.0 * load_cpu_s / duration_s,
        other_cpu_pct=100.0 * (machine_s - server_cpu_s - broker_cpu_s - load_cpu_s) / duration_s,
        pool_exhausted=any(publisher.exhausted for publisher in publishers),
        errors=[publisher.error for publisher in publishers if publisher.error],
    )


def _acked_records(publisher: Publisher) -> list[int]:
    """Return the record count of each PUBACKed message of the window."""
    acked = len(publisher.acked)
    return [count for _, _, count in publisher.messages[: min(acked, len(publisher.sent))]]


def _settle(server: ServerChild, client: httpx.Client, target: float, timeout_s: float) -> float:
    """Wait until fleetpulse has accepted ``target`` records in all; return the count."""
    deadline_s = time.monotonic() + timeout_s
    while True:
        accepted = server.metrics(client).get(METRIC_ACCEPTED, 0.0)
        if accepted >= target or time.monotonic() >= deadline_s:
            return accepted
        time.sleep(0.2)


def _ms(value_s: float | None) -> float | None:
    return None if value_s is None else value_s * 1000.0


def format_summary(report: MqttReport) -> str:
    """Render the report as an aligned two-column table for a terminal."""
    rows = [
        ("scenario", f"MQTT QoS 1, {report.records_per_message} record(s) per message, "
                     f"{report.publishers} publishers, {report.vehicles} vehicles"),
        ("published", f"{report.messages_published:,} messages, {report.records_published:,} "
                      f"records in {report.duration_s:g} s"),
        ("PUBACKed by broker", f"{report.pubacked_rps:,.0f} rec/s (PUBACK p50 "
                               f"{_fmt(report.puback_p50_ms)}, p99 {_fmt(report.puback_p99_ms)})"),
        ("accepted by fleetpulse", f"{report.accepted_rps:,.0f} rec/s"),
        ("processed and stored", f"{report.processed_rps:,.0f} rec/s"),
        ("queue at end", f"{report.queue_depth_end:,} records"),
        ("not accepted", f"{report.records_not_accepted:,} records {report.settle_s:g} s after "
                         "the window"),
        ("server CPU", f"{report.server_cpu_pct:.0f} % of one core (with child processes)"),
        ("server peak RSS", f"{report.server_peak_rss_mib:,.0f} MiB"),
        ("mosquitto CPU", f"{report.broker_cpu_pct:.0f} % of one core"),
        ("publishers' CPU", f"{report.load_cpu_pct:.0f} % of one core"),
        ("other CPU", f"{report.other_cpu_pct:.0f} % of one core"),
    ]
    if report.pool_exhausted:
        rows.append(("WARNING", "the pre-encoded pool ran out before the end; raise "
                                "--pool-records"))
    rows.extend(("error", error) for error in report.errors)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _fmt(value_ms: float | None) -> str:
    return "n/a" if value_ms is None else f"{value_ms:,.1f} ms"


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser of this script."""
    parser = argparse.ArgumentParser(
        description="Load-test the MQTT ingest of `fleetpulse run` through its own Mosquitto "
        "on 127.0.0.1. Progress goes to stderr, the summary to stdout.",
    )
    defaults = MqttOptions()

    parser.add_argument("--duration", type=float, default=defaults.duration_s, metavar="S",
                        help=f"seconds of load, at most {MAX_DURATION_S:g} (default 20)")
    parser.add_argument("--records-per-message", type=int,
                        default=defaults.records_per_message, metavar="N",
                        help="records per MQTT message; 1 sends a bare JSON object (default 1)")
    parser.add_argument("--vehicles", type=int, default=defaults.vehicles, metavar="N",
                        help="vehicles, one topic each (default 1000)")
    parser.add_argument("--publishers", type=int, default=defaults.publishers, metavar="N",
                        help="publishing MQTT clients in this process (default 2)")

    parser.add_argument("--window", type=int, default=defaults.window_records, metavar="N",
                        help="records published and not yet accepted by fleetpulse, at most "
                        "(default 5000)")
    parser.add_argument("--receive-maximum", type=int, default=None, metavar="N",
                        help="the server's [mqtt] receive_maximum (default: its own default)")
    parser.add_argument("--omit-device-id", action="store_true",
                        help="leave device_id out of the payloads, so fleetpulse reads it "
                        "from the topic")

    parser.add_argument("--pool-records", type=int, default=None, metavar="N",
                        help="records to pre-encode in all (default: min("
                        f"{POOL_RPS:,}, {POOL_MESSAGES_PER_S:,} x records per message) x "
                        "duration)")
    parser.add_argument("--settle", type=float, default=defaults.settle_s, metavar="S",
                        help="seconds to wait after the window for fleetpulse to accept "
                        "what was published (default 30)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark from the command line; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = MqttOptions(
        duration_s=args.duration,
        records_per_message=args.records_per_message,
        vehicles=args.vehicles,
        publishers=args.publishers,
        window_records=args.window,
        receive_maximum=args.receive_maximum,
        omit_device_id=args.omit_device_id,
        settle_s=args.settle,
        pool_records=args.pool_records,
        label=f"MQTT, {args.records_per_message} record(s) per message",
        command=["benchmarks/mqtt_load.py", *argv],
    )
    try:
        report = run_mqtt_benchmark(options)
    except FileNotFoundError as exc:
        print(f"mqtt_load: {exc}", file=sys.stderr)
        return EXIT_NO_BROKER
    except ValueError as exc:
        print(f"mqtt_load: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mqtt_load: interrupted; the server child and mosquitto are stopped",
              file=sys.stderr)
        return 130

    print(format_summary(report))
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
