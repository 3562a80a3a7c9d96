"""What MongoDB holds, read back as it is stored, for tests to check."""

from services.lifecycle.adapters import outbox
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.service_layer.ports import OutboxRow


async def outbox_rows(store: MongoStore, lead_id: str | None = None) -> list[OutboxRow]:
    """Every row the outbox holds (sent or not), of one lead or of all."""
    rows = [row async for d in store.database["outbox"].find() for row in outbox.rows_of(d)]
    return [row for row in rows if lead_id is None or row.lead_id == lead_id]
