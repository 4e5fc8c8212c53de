-- The first layout of the PostgreSQL store. Times are epoch milliseconds (UTC) in
-- bigint, distances metres and speeds km/h in double precision. Device ids and event
-- types sort by byte value (COLLATE "C"), as in the SQLite store, whatever the
-- database's locale.

-- Enriched records: every Record field, then what the processing chain added.
-- used_speed_kmh is the speed the detectors used (reported, or derived from fixes).
-- Partitioned by range of ts_ms. The store creates partitions as writes need them
-- (listed in record_partitions), and retention drops whole partitions.
CREATE TABLE records (
    device_id text COLLATE "C" NOT NULL,
    ts_ms bigint NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    received_at_ms bigint NOT NULL,
    speed_kmh double precision,
    heading_deg double precision,
    altitude_m double precision,
    accuracy_m double precision,
    ignition boolean,
    engine_rpm double precision,
    coolant_c double precision,
    fuel_pct double precision,
    battery_v double precision,
    odometer_m double precision,
    dtc jsonb,
    valid boolean,
    attributes jsonb,
    source text NOT NULL,
    distance_m double precision NOT NULL,
    used_speed_kmh double precision,
    motion text NOT NULL,
    status text NOT NULL,
    reasons jsonb NOT NULL,
    flags jsonb NOT NULL,
    -- The identity of a record, and the index of the positions query. A unique key of a
    -- partitioned table must contain the partition key, and this one does.
    PRIMARY KEY (device_id, ts_ms)
) PARTITION BY RANGE (ts_ms);

-- Serves the fleet distance sum as an index-only scan.
CREATE INDEX records_ts ON records (ts_ms) INCLUDE (distance_m);

-- The partitions of records: [from_ms, to_ms) each. Written under an advisory lock
-- together with the CREATE TABLE or DROP TABLE of the partition.
CREATE TABLE record_partitions (
    name text PRIMARY KEY,
    from_ms bigint NOT NULL,
    to_ms bigint NOT NULL,
    CHECK (from_ms < to_ms)
);

-- Ids come from the identity's sequence. The store takes an advisory lock before it
-- inserts events and holds it to the commit, so ids become visible in increasing order
-- and a client that pages by id skips none.
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id text COLLATE "C" NOT NULL,
    ts_ms bigint NOT NULL,
    type text COLLATE "C" NOT NULL,
    severity text NOT NULL,
    details jsonb NOT NULL,
    UNIQUE (device_id, type, ts_ms)
);
CREATE INDEX events_ts ON events (ts_ms);
CREATE INDEX events_device_ts ON events (device_id, ts_ms);
CREATE INDEX events_type_ts ON events (type, ts_ms);

-- end_ts_ms and the end position are NULL while the trip is open.
CREATE TABLE trips (
    device_id text COLLATE "C" NOT NULL,
    start_ts_ms bigint NOT NULL,
    start_lat double precision NOT NULL,
    start_lon double precision NOT NULL,
    end_ts_ms bigint,
    end_lat double precision,
    end_lon double precision,
    distance_m double precision NOT NULL,
    duration_s double precision NOT NULL,
    max_speed_kmh double precision NOT NULL,
    avg_speed_kmh double precision NOT NULL,
    idle_s double precision NOT NULL,
    PRIMARY KEY (device_id, start_ts_ms)
);
-- Retention deletes an open trip by its start and a closed one by its end.
CREATE INDEX trips_retention ON trips ((COALESCE(end_ts_ms, start_ts_ms)));

-- view is the msgpack encoding of VehicleView, state the processor's opaque blob.
-- last_ts_ms copies view.last_ts_ms so an upsert can reject an older view.
CREATE TABLE vehicles (
    device_id text COLLATE "C" PRIMARY KEY,
    last_ts_ms bigint NOT NULL,
    view bytea NOT NULL,
    state bytea NOT NULL
);

CREATE TABLE dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at_ms bigint NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL,
    source text NOT NULL,
    device_id text COLLATE "C",
    idx integer,
    raw text NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at_ms);

-- The hourly activity behind reports. hour_ms is the start of a UTC hour. A trip counts
-- in the hour it started, whole, and an event in the hour of its ts_ms. A row is
-- recomputed from trips and events, never incremented, so a redelivered batch leaves it
-- as a fresh computation would.
CREATE TABLE vehicle_hours (
    device_id text COLLATE "C" NOT NULL,
    hour_ms bigint NOT NULL,
    distance_m double precision NOT NULL,
    driving_s double precision NOT NULL,
    idle_s double precision NOT NULL,
    trips integer NOT NULL,
    stops integer NOT NULL,
    max_speed_kmh double precision NOT NULL,
    overspeeds integer NOT NULL,
    overspeed_s double precision NOT NULL,
    harsh_brakings integer NOT NULL,
    harsh_accelerations integer NOT NULL,
    PRIMARY KEY (device_id, hour_ms)
);
