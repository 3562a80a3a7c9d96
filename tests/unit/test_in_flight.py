"""What the consumer has in hand, as its relay and its other batches see it."""

import asyncio

from services.lifecycle.service_layer.in_flight import InFlightOutbox
from services.lifecycle.service_layer.ports import OutboxRow


def row(document: str, lead: str) -> OutboxRow:
    return OutboxRow(document, "leads.events", lead.encode(), [], b"{}", lead, (1, 0))


def test_the_relay_leaves_held_documents_and_every_document_of_their_leads() -> None:
    own = InFlightOutbox()
    with own.holding({"d1": ["lead-a", "lead-b"]}):
        assert own.leaves("d1", ["lead-a", "lead-b"])
        assert own.leaves("d2", ["lead-b", "lead-c"])  # would overtake d1's row of lead-b
        assert not own.leaves("d3", ["lead-c"])
    assert not own.leaves("d1", ["lead-a"]) and not own.leaves("d2", ["lead-b"])


def test_a_document_held_twice_stays_with_its_first_holder() -> None:
    own = InFlightOutbox()
    with own.holding({"d1": ["lead-a"]}):
        with own.holding({"d1": ["lead-a"], "d2": ["lead-b"]}):
            pass
        assert own.leaves("d1", ["lead-a"]) and not own.leaves("d2", ["lead-b"])
    assert not own.leaves("d9", ["lead-a"])  # nothing of lead-a is left held


async def test_a_batch_waits_for_another_batchs_publish_not_for_its_mark() -> None:
    own = InFlightOutbox()
    rows = [row("d1", "lead-a")]
    published = asyncio.Event()

    async def other_batch() -> None:
        with own.holding({"d1": ["lead-a"]}):
            await published.wait()
            own.published(["d1"])
            await asyncio.Event().wait()  # marking it sent, for ever

    holder = asyncio.create_task(other_batch())
    await asyncio.sleep(0)
    assert own.in_hand(rows) == {"d1"}
    waiting = asyncio.create_task(own.settled({"d1"}))
    await asyncio.sleep(0)  # it runs up to its wait
    assert not waiting.done()
    published.set()
    await asyncio.wait_for(waiting, 5)
    assert own.in_hand(rows) == set() and own.sent(rows) == {"d1"}
    holder.cancel()


async def test_a_batch_stops_waiting_when_the_other_batchs_publish_failed() -> None:
    own = InFlightOutbox()
    with own.holding({"d1": ["lead-a"]}):
        waiting = asyncio.create_task(own.settled({"d1"}))
        await asyncio.sleep(0)  # it runs up to its wait
        assert not waiting.done()
    await asyncio.wait_for(waiting, 5)
    assert own.sent([row("d1", "lead-a")]) == set()  # the waiting batch's to send
