"""Publishing committed rows, the one way every sender here does it (the pipeline,
the relay, the scheduler's refusals of held actions and tombstones).

A row Kafka refuses for good (too large, not allowed, against a policy) must not
hold back the rows committed with it, nor be sent again and again: it is set
aside (kept, counted, listed by `leads outbox list`, sent again by `leads outbox
retry`), and its document is then sent in full as far as Kafka is concerned.
"""

import logging
from collections.abc import Sequence

from services.lifecycle.service_layer.ports import Outbox, OutboxRow, Publisher

log = logging.getLogger(__name__)


async def publish(publisher: Publisher, outbox: Outbox, rows: Sequence[OutboxRow]) -> None:
    """Returns once every row is on Kafka or set aside; raises when some may go later."""
    refusals = await publisher.publish(rows)
    if not refusals:
        return
    await outbox.set_aside([(rows[r.row], r.error) for r in refusals])
    log.error(
        "Kafka refused rows for good; they are set aside (leads outbox list)",
        extra={
            "rows": len(refusals),
            "errors": sorted({r.error for r in refusals}),
            "topics": sorted({rows[r.row].topic for r in refusals}),
        },
    )


async def publish_or_leave(
    publisher: Publisher, outbox: Outbox, rows: Sequence[OutboxRow], what: str
) -> None:
    """Rows a scheduler job committed, out at once and marked sent; when Kafka is
    away, left in the outbox for the service's relay (`what` names them in the log)."""
    if not rows:
        return
    try:
        await publish(publisher, outbox, rows)
        await outbox.mark_sent([row.id for row in rows])
    except Exception as error:
        log.warning(
            "rows left to the relay",
            extra={"what": what, "error": type(error).__name__, "rows": len(rows)},
        )
