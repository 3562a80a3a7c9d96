"""Two leads of one customer for one partner: the new one is flagged, never dropped.

The keys themselves (normalised, hashed, scoped to the partner) are made in
`matching`; here an open lead that shares one is chosen to be named.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from contracts.events import MatchedOn, PossibleDuplicate, Stage

OPEN = frozenset({Stage.RECEIVED, Stage.ACCEPTED})

PER_KEY = 20
"""Open leads compared per key, the newest: a shared address (info@, a switchboard)
may be on thousands, and a new lead only needs to be flagged against one of them."""


@dataclass(frozen=True)
class LookAlike:
    """A stored lead that shares a match key with a new one: what choosing needs."""

    lead_id: str
    partner_id: str
    stage: Stage
    received_at: datetime
    match_keys: frozenset[str]


LookAlikes = Mapping[str, Mapping[str, LookAlike]]
"""Stored leads by match key, then by lead id."""


def possible_duplicate(
    lead_id: str,
    partner_id: str,
    keys: Mapping[str, MatchedOn],
    lookalikes: LookAlikes,
    since: datetime,
) -> PossibleDuplicate | None:
    """The open lead of the same partner, received since `since`, that shares the most
    kinds of key with the new lead's `keys` (hash -> kind); the newest among equals."""
    others = {la.lead_id: la for key in keys for la in lookalikes.get(key, {}).values()}
    best: tuple[int, datetime, str] | None = None
    matched: list[MatchedOn] = []
    for other in others.values():
        if other.lead_id == lead_id or other.partner_id != partner_id:
            continue
        if other.stage not in OPEN or other.received_at < since:
            continue
        kinds = sorted({keys[k] for k in other.match_keys if k in keys})
        rank = (len(kinds), other.received_at, other.lead_id)
        if kinds and (best is None or rank > best):
            best, matched = rank, kinds
    if best is None:
        return None
    return PossibleDuplicate(lead_id=best[2], matched_on=matched)
