"""Partner profiles: the newest `updated_at` wins, whatever order they arrive in."""

from contracts.profiles import PartnerProfile


def supersedes(incoming: PartnerProfile, stored: PartnerProfile | None) -> bool:
    """An equal `updated_at` is the same profile again: it changes nothing."""
    return stored is None or incoming.updated_at > stored.updated_at
