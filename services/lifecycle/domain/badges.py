"""The inbox's badge counts: which (tab, stage) counters a lead adds one to.

Kept as counters that move with every change of a lead, so that reading them
costs the same however many leads a partner has.
"""

from contracts.events import Tab
from services.lifecycle.domain.lead import Lead


def counted_in(lead: Lead | None) -> frozenset[str]:
    """`tab.stage` keys of the counters the lead adds one to; favorites count
    in their own tab as well as in their lead type's."""
    if lead is None:
        return frozenset()
    keys = {f"{lead.tab.value}.{lead.stage.value}"}
    if lead.favorite:
        keys.add(f"{Tab.FAVORITES.value}.{lead.stage.value}")
    return frozenset(keys)


def moves(before: Lead | None, after: Lead) -> dict[str, int]:
    """How a change of a lead moves the counters: +1 where it now counts, -1 where
    it no longer does."""
    was, now = counted_in(before), counted_in(after)
    if was == now:
        return {}
    return {**dict.fromkeys(now - was, 1), **dict.fromkeys(was - now, -1)}
