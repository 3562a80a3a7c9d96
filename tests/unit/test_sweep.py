"""The sweep, with a fake clock and in-memory edges: what it emits, when, and how much at once."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts.commands import Command
from services.lifecycle.domain.clock import FixedClock
from services.lifecycle.domain.deadlines import Deadline
from services.lifecycle.service_layer.deadline_sweep import Sweeper, next_emission

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
RETRY = timedelta(minutes=5)


@dataclass
class Stored:
    deadline: Deadline
    emit_at: datetime
    emissions: int = 0


class InMemoryDeadlines:
    """The `deadlines` collection, reduced to what the sweep relies on."""

    def __init__(self, *deadlines: Deadline) -> None:
        self.stored = {d.command_id: Stored(d, d.due_at) for d in deadlines}

    async def due(self, now: datetime, limit: int) -> list[tuple[Deadline, int]]:
        due = sorted((s.emit_at, i) for i, s in self.stored.items() if s.emit_at <= now)
        return [(self.stored[i].deadline, self.stored[i].emissions) for _, i in due[:limit]]

    async def postpone(self, next_emissions: Sequence[tuple[Deadline, datetime]]) -> None:
        for deadline, at in next_emissions:
            entry = self.stored[deadline.command_id]
            entry.emit_at, entry.emissions = at, entry.emissions + 1

    async def count_due(self, now: datetime) -> int:
        return sum(1 for s in self.stored.values() if s.emit_at <= now)

    def settle(self, deadline: Deadline) -> None:
        del self.stored[deadline.command_id]


class Broker:
    def __init__(self) -> None:
        self.batches: list[list[Command]] = []

    async def publish(self, commands: Sequence[Command]) -> None:
        self.batches.append(list(commands))

    @property
    def sent(self) -> list[tuple[str, str]]:
        return [(c.command, c.lead_id) for batch in self.batches for c in batch]


class SwitchableLease:
    def __init__(self, held: bool = True, lost_after: int | None = None) -> None:
        self.held = held
        self.lost_after = lost_after
        self.calls = 0

    async def acquire(self) -> bool:
        self.calls += 1
        if self.lost_after is not None and self.calls > self.lost_after:
            return False
        return self.held

    async def release(self) -> None:
        self.held = False


def sweeper(
    deadlines: InMemoryDeadlines,
    clock: FixedClock,
    broker: Broker,
    lease: SwitchableLease | None = None,
    batch: int = 100,
) -> Sweeper:
    return Sweeper(deadlines, broker, lease or SwitchableLease(), clock, batch, RETRY)


def expiry(lead: str, due: datetime) -> Deadline:
    return Deadline(lead, "expire", due)


async def test_a_sweep_emits_what_is_due_oldest_first_and_nothing_else() -> None:
    clock, broker = FixedClock(T0), Broker()
    store = InMemoryDeadlines(
        expiry("late", T0 - timedelta(hours=1)),
        Deadline("reminded", "remind", T0 - timedelta(days=1), remaining=timedelta(hours=24)),
        Deadline("cooling", "age_contact_request", T0),
        expiry("not-yet", T0 + timedelta(seconds=1)),
    )
    report = await sweeper(store, clock, broker).sweep()
    assert broker.sent == [
        ("remind", "reminded"),
        ("expire", "late"),
        ("age_contact_request", "cooling"),
    ]
    assert (report.due, dict(report.emitted)) == (
        3,
        {"remind": 1, "expire": 1, "age_contact_request": 1},
    )

    clock.advance(timedelta(seconds=1))
    await sweeper(store, clock, broker).sweep()
    assert broker.sent[3:] == [("expire", "not-yet")]


async def test_an_unsettled_deadline_is_emitted_again_after_the_retry_wait_then_twice_as_late() -> (
    None
):
    clock, broker = FixedClock(T0), Broker()
    store = InMemoryDeadlines(expiry("lost", T0))
    sweep = sweeper(store, clock, broker)
    await sweep.sweep()
    emitted_at = []
    for _ in range(4 * 60):  # four hours, one sweep a minute
        clock.advance(timedelta(minutes=1))
        if (await sweep.sweep()).emitted:
            emitted_at.append(clock.now() - T0)
    assert emitted_at[:4] == [timedelta(minutes=m) for m in (5, 15, 35, 75)]
    ids = {c.message_id for batch in broker.batches for c in batch}
    assert ids == {expiry("lost", T0).command_id}


async def test_a_settled_deadline_is_not_emitted_again() -> None:
    clock, broker = FixedClock(T0), Broker()
    deadline = expiry("answered", T0)
    store = InMemoryDeadlines(deadline)
    sweep = sweeper(store, clock, broker)
    await sweep.sweep()
    store.settle(deadline)
    clock.advance(RETRY * 10)
    await sweep.sweep()
    assert broker.sent == [("expire", "answered")]


async def test_a_backlog_goes_out_in_bounded_batches_and_one_sweep_ends() -> None:
    clock, broker = FixedClock(T0), Broker()
    store = InMemoryDeadlines(
        *(expiry(f"lead-{i}", T0 - timedelta(seconds=i)) for i in range(2500))
    )
    report = await sweeper(store, clock, broker, batch=1000).sweep()
    assert [len(b) for b in broker.batches] == [1000, 1000, 500]
    assert (report.due, report.batches, report.emitted["expire"]) == (2500, 3, 2500)
    assert len({lead for _, lead in broker.sent}) == 2500


async def test_a_replica_without_the_lease_emits_nothing() -> None:
    clock, broker = FixedClock(T0), Broker()
    report = await sweeper(
        InMemoryDeadlines(expiry("x", T0)), clock, broker, SwitchableLease(held=False)
    ).sweep()
    assert (report.leader, broker.sent) == (False, [])


async def test_a_lease_lost_mid_sweep_stops_it_after_the_batch_in_hand() -> None:
    clock, broker = FixedClock(T0), Broker()
    store = InMemoryDeadlines(*(expiry(f"lead-{i}", T0) for i in range(30)))
    await sweeper(store, clock, broker, SwitchableLease(lost_after=1), batch=10).sweep()
    assert [len(b) for b in broker.batches] == [10]
    assert await store.count_due(clock.now()) == 20


def test_retry_waits_double_and_stop_doubling_at_64_times() -> None:
    waits = [next_emission(T0, n, RETRY) - T0 for n in (0, 1, 2, 6, 7, 50)]
    assert waits == [RETRY, RETRY * 2, RETRY * 4, RETRY * 64, RETRY * 64, RETRY * 64]
