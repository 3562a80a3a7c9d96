"""Partner profiles: the newest `updated_at` wins, whatever order they arrive in;
alerts go to the contacts of the location that serves the customer."""

from contracts.common import Contact
from contracts.profiles import PartnerProfile
from services.lifecycle.domain.clock import to_millis


def supersedes(incoming: PartnerProfile, stored: PartnerProfile | None) -> bool:
    """An equal `updated_at` is the same profile again: it changes nothing. Times
    are compared to the millisecond, as they are stored."""
    return stored is None or to_millis(incoming.updated_at) > to_millis(stored.updated_at)


def serves(profile: PartnerProfile, country: str) -> bool:
    """Whether the partner takes customers from `country`: the countries it prefers
    when it lists any, else its locations' countries; a profile naming neither
    takes every country."""
    countries = profile.preferences.countries or [loc.country for loc in profile.locations]
    return not countries or country in countries


def alert_contacts(profile: PartnerProfile | None, country: str) -> tuple[Contact, ...]:
    """The alert contacts of the locations in the customer's country, or of every
    location when none is there; each e-mail address once."""
    if profile is None:
        return ()
    serving = [loc for loc in profile.locations if loc.country == country]
    chosen = [c for loc in serving or profile.locations for c in loc.contacts]
    if serving and not chosen:
        # A location without contacts must not silence the alert.
        chosen = [c for loc in profile.locations for c in loc.contacts]
    unique: dict[str, Contact] = {}
    for contact in chosen:
        unique.setdefault(contact.email.lower(), contact)
    return tuple(unique.values())
