"""The outbox documents this process's consumer has in hand, for its relay to stay off.

The relay is the recovery path for committed rows nobody publishes. A document a
batch here is committing or publishing is not such a row, however slow the store
or the broker, and neither is one published here whose mark-sent is missing or
was read as unsent just before it landed. Without this record the relay would
send them again: the same ids twice on the wire. Batches here use it the same
way: one that read another's rows as unsent waits for that one's publish.
"""

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from services.lifecycle.service_layer.ports import OutboxRow

REMEMBERED_PUBLISHED = 50_000


class InFlightOutbox:
    def __init__(self, remembered: int = REMEMBERED_PUBLISHED) -> None:
        self._held: dict[Any, frozenset[str]] = {}
        """Documents being committed or published here, with the leads they hold."""
        self._held_leads: Counter[str] = Counter()
        """The leads of those documents, with how many of them hold rows of each."""
        self._change = asyncio.Event()
        """Set, and replaced, whenever documents are published or let go."""
        self._published: OrderedDict[Any, None] = OrderedDict()
        """Documents published here lately, oldest first."""
        self._remembered = remembered

    @contextmanager
    def holding(self, documents: Mapping[Any, Iterable[str]]) -> Iterator[None]:
        """While the block runs, the documents (ids, with their leads) are this
        process's to publish. One held already stays with its holder."""
        taken = {i: frozenset(leads) for i, leads in documents.items() if i not in self._held}
        self._held.update(taken)
        for leads in taken.values():
            self._held_leads.update(leads)
        try:
            yield
        finally:
            for id_, leads in taken.items():
                del self._held[id_]
                self._held_leads.subtract(leads)
            self._held_leads = +self._held_leads  # drops the leads no longer held
            if taken:
                self._changed()

    def in_hand(self, rows: Sequence[OutboxRow]) -> set[Any]:
        """Documents among `rows` held here and not yet published."""
        return {row.id for row in rows if self._in_hand(row.id)}

    async def settled(self, ids: set[Any]) -> None:
        """Returns once each of these documents is published here, or let go."""
        while any(self._in_hand(id_) for id_ in ids):
            await self._change.wait()

    def _in_hand(self, id_: Any) -> bool:
        return id_ in self._held and id_ not in self._published

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def published(self, ids: Iterable[Any]) -> None:
        for id_ in ids:
            self._published[id_] = None
        while len(self._published) > self._remembered:
            self._published.popitem(last=False)
        self._changed()

    def was_published(self, id_: Any) -> bool:
        return id_ in self._published

    def leaves(self, document_id: Any, lead_ids: Sequence[str]) -> bool:
        """Whether the relay leaves this document alone: held here, or holding rows of
        a lead that a held document has rows of (sending them would overtake those)."""
        return document_id in self._held or any(lead in self._held_leads for lead in lead_ids)

    def busy(self, rows: Sequence[OutboxRow]) -> set[Any]:
        """Documents among `rows` that the relay leaves alone (see `leaves`)."""
        return {row.id for row in rows if self.leaves(row.id, [row.lead_id])}

    def sent(self, rows: Sequence[OutboxRow]) -> set[Any]:
        """Documents among `rows` published here already: only their mark is missing."""
        return {row.id for row in rows if row.id in self._published}


def by_document(rows: Iterable[OutboxRow]) -> dict[Any, set[str]]:
    """The documents of `rows`, with the leads each holds rows of."""
    documents: dict[Any, set[str]] = {}
    for row in rows:
        documents.setdefault(row.id, set()).add(row.lead_id)
    return documents
