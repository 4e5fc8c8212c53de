"""Child process of the crash-restart test: publishes until it is killed.

Usage: python -m tests.queue.crash_publisher DATA_DIR ROUND

Several publishers run concurrently so that their publishes share commits. After
each publish returns, the child prints "DEVICE_ID FIRST_TS_MS COUNT" and flushes, so
every printed line is a publish that the queue acknowledged as durable.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from fleetpulse.queue.sqlite import SqliteQueue
from tests.queue.queue_helpers import make_records, make_settings

PUBLISHERS = 4
BATCH_RECORDS = 50
# Bounds the child's run if the test does not kill it.
MAX_BATCHES_PER_PUBLISHER = 2_000


async def publish_until_killed(queue: SqliteQueue, device_id: str) -> None:
    for batch in range(MAX_BATCHES_PER_PUBLISHER):
        first_ts_ms = batch * BATCH_RECORDS
        await queue.publish(make_records(device_id, first_ts_ms, BATCH_RECORDS))
        sys.stdout.write(f"{device_id} {first_ts_ms} {BATCH_RECORDS}\n")
        sys.stdout.flush()


async def main(data_dir: Path, round_no: int) -> None:
    queue = SqliteQueue(make_settings("sqlite", data_dir))
    await queue.start()
    print("started", flush=True)
    publishers = [publish_until_killed(queue, f"r{round_no}-p{i}") for i in range(PUBLISHERS)]
    await asyncio.gather(*publishers)
    await queue.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
