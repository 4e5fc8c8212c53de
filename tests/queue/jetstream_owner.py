"""Child process of the JetStream handover tests: owns partitions until it is killed.

Usage: python -m tests.queue.jetstream_owner NATS_URL LEASE_TTL_S EXPECTED_RECORDS

The child opens the JetStream queue, fetches without acknowledging until it has
EXPECTED_RECORDS records, prints "fetched N" and flushes, then keeps renewing its
partition leases until the test kills it. Its unacknowledged messages stay in the stream.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from fleetpulse.config import NatsSettings
from fleetpulse.queue.jetstream import JetStreamQueue
from tests.queue.queue_helpers import make_settings

FETCH_WAIT_S = 0.2
# Bounds the child's run if the test does not kill it.
MAX_RUN_S = 120.0


async def main(nats_url: str, lease_ttl_s: float, expected_records: int) -> None:
    nats = NatsSettings(url=nats_url, lease_ttl_s=lease_ttl_s)
    with tempfile.TemporaryDirectory() as data_dir:
        queue = JetStreamQueue(make_settings("jetstream", Path(data_dir), nats))
        await queue.start()
        fetched = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_RUN_S
        while fetched < expected_records and loop.time() < deadline:
            deliveries = await queue.fetch(1000, FETCH_WAIT_S)
            fetched += sum(len(delivery.records) for delivery in deliveries)
        print(f"fetched {fetched}", flush=True)
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        await queue.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
