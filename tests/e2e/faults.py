"""A test build of `leads`: the real service with faults injected where a test asks.

Run as `python -m tests.e2e.faults serve`. Each fault is armed by a file that
exists (its path in an environment variable), so a test can take the cause away:
- LEADS_TEST_POISON_FILE: while it exists, receiving a lead whose id starts with
  `poison-` raises an error no rule foresaw.
- LEADS_TEST_CRASH_FILE: SIGKILL at LEADS_TEST_CRASH_AT (`before_publish`: a batch
  is committed, its events not yet published; `before_offset_commit`: published,
  offsets not yet committed), once: the file is removed first.
"""

import os
import signal
import sys
from pathlib import Path
from typing import Any

from services.lifecycle.adapters.kafka_consumer import BatchConsumer
from services.lifecycle.domain import lead as rules
from services.lifecycle.entrypoints import cli
from services.lifecycle.service_layer.pipeline import Pipeline

POISON = "poison-"


def armed(variable: str) -> bool:
    path = os.environ.get(variable)
    return path is not None and Path(path).exists()


def crash_once(at: str) -> None:
    if os.environ.get("LEADS_TEST_CRASH_AT") == at and armed("LEADS_TEST_CRASH_FILE"):
        Path(os.environ["LEADS_TEST_CRASH_FILE"]).unlink()
        os.kill(os.getpid(), signal.SIGKILL)


def inject() -> None:
    receive = rules.receive

    def poisoned_receive(existing: Any, message: Any, *args: Any) -> Any:
        if message.lead_id.startswith(POISON) and armed("LEADS_TEST_POISON_FILE"):
            raise RuntimeError("injected: a fault no rule foresaw")
        return receive(existing, message, *args)

    rules.receive = poisoned_receive  # type: ignore[assignment]

    publish = Pipeline._publish

    async def crashing_publish(self: Pipeline, rows: Any) -> None:
        if rows:
            crash_once("before_publish")
        await publish(self, rows)

    Pipeline._publish = crashing_publish  # type: ignore[method-assign]

    commit = BatchConsumer._commit

    async def crashing_commit(self: BatchConsumer, offsets: Any) -> None:
        crash_once("before_offset_commit")
        await commit(self, offsets)

    BatchConsumer._commit = crashing_commit  # type: ignore[method-assign]


if __name__ == "__main__":
    inject()
    sys.exit(cli.main())
