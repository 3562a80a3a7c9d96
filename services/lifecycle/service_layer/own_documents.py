"""The outbox documents this process's consumer has in hand, for its relay to stay off.

The relay is the recovery path for committed rows nobody publishes. A document a
batch here is committing or publishing is not such a row, however slow the store
or the broker, and neither is one published here whose mark-sent is missing or
was read as unsent just before it landed. Without this record the relay would
send them again: the same ids twice on the wire. Batches here use it the same
way: one that read another's rows as unsent waits for that one's publish.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from services.lifecycle.service_layer.ports import OutboxRow

REMEMBERED_PUBLISHED = 50_000


class OwnDocuments:
    def __init__(self, remembered: int = REMEMBERED_PUBLISHED) -> None:
        self._held: dict[Any, frozenset[str]] = {}
        """Documents being committed or published here, with the leads they hold."""
        self._released = asyncio.Event()
        """Set, and replaced, whenever held documents are let go."""
        self._published: OrderedDict[Any, None] = OrderedDict()
        """Documents published here lately, oldest first."""
        self._remembered = remembered

    @contextmanager
    def holding(self, documents: Mapping[Any, Iterable[str]]) -> Iterator[None]:
        """While the block runs, the documents (ids, with their leads) are this
        process's to publish."""
        for id_, leads in documents.items():
            self._held[id_] = frozenset(leads)
        try:
            yield
        finally:
            for id_ in documents:
                self._held.pop(id_, None)
            if documents:
                self._released.set()
                self._released = asyncio.Event()

    def held(self, rows: Sequence[OutboxRow]) -> set[Any]:
        return {row.id for row in rows if row.id in self._held}

    async def settled(self, ids: set[Any]) -> None:
        """Returns once none of these documents is in hand here any more."""
        while any(id_ in self._held for id_ in ids):
            await self._released.wait()

    def published(self, ids: Iterable[Any]) -> None:
        for id_ in ids:
            self._published[id_] = None
        while len(self._published) > self._remembered:
            self._published.popitem(last=False)

    def was_published(self, id_: Any) -> bool:
        return id_ in self._published

    def busy(self, rows: Sequence[OutboxRow]) -> set[Any]:
        """Documents among `rows` to leave alone: held here, or holding rows of a lead
        that a held document has rows of (sending them would overtake those)."""
        leads = {lead for held in self._held.values() for lead in held}
        return {row.id for row in rows if row.id in self._held or row.lead_id in leads}

    def sent(self, rows: Sequence[OutboxRow]) -> set[Any]:
        """Documents among `rows` published here already: only their mark is missing."""
        return {row.id for row in rows if row.id in self._published}


def by_document(rows: Iterable[OutboxRow]) -> dict[Any, set[str]]:
    """The documents of `rows`, with the leads each holds rows of."""
    documents: dict[Any, set[str]] = {}
    for row in rows:
        documents.setdefault(row.id, set()).add(row.lead_id)
    return documents
