"""Topic names, type names and reason codes: fixed by contract v1."""

from enum import StrEnum


class Topic(StrEnum):
    INBOUND = "leads.inbound"
    PARTNER_ACTIONS = "leads.partner-actions"
    COMMANDS = "leads.commands"
    PROFILES = "partners.profiles"
    EVENTS = "leads.events"
    NOTIFICATIONS = "leads.notifications"
    REJECTED = "leads.rejected"
    PERFORMANCE = "partners.performance"
    DEAD_LETTER = "leads.dead-letter"
    STATE = "leads.state"
    """Each lead's current state, keyed by lead id, log-compacted: where a connector
    that joins late starts."""
    PRIVACY_REQUESTS = "privacy.requests"
    """A customer's requests about their personal data (`erase_customer`), keyed by request id."""
    PRIVACY_OUTCOMES = "privacy.outcomes"
    """What became of each privacy request (`privacy.erasure_completed`), keyed by request id."""

    def named(self, prefix: str) -> str:
        """The topic's name on the broker, with the deployment's prefix (e.g. `prod.`)."""
        return f"{prefix}{self.value}"


class Reason(StrEnum):
    """Why a message was refused (`leads.rejected`.reason)."""

    MALFORMED = "malformed"
    UNKNOWN_LEAD = "unknown_lead"
    FORBIDDEN = "forbidden"
    INVALID_TRANSITION = "invalid_transition"
    LEAD_ARCHIVED = "lead_archived"
    DUPLICATE_LEAD = "duplicate_lead"
    PARTNER_PROFILE_MISSING = "partner_profile_missing"
    STALE_VERSION = "stale_version"
    """`expected_version` is no longer the lead's version: the sender acted on an old view."""
    INTERNAL_ERROR = "internal_error"
    """The message kept failing for a reason no rule foresaw: parked on `leads.dead-letter`."""
    UNDO_WINDOW_PASSED = "undo_window_passed"
    """`undo_decline` came more than `LEADS_UNDO_WINDOW` after the decline."""
    REOPEN_WINDOW_PASSED = "reopen_window_passed"
    """`reopen` came more than `LEADS_REOPEN_WINDOW` after the lead was declined or expired."""
    REOPEN_LIMIT_REACHED = "reopen_limit_reached"
    """The lead was reopened twice already."""
    LEAD_REOFFERED = "lead_reoffered"
    """The lead went to another partner since: it cannot come back to this one."""
    INVALID_SNOOZE = "invalid_snooze"
    """`snooze.until` is not in the future, or more than 14 days ahead."""
    ERASED_SUBJECT = "erased_subject"
    """The lead's customer had their data erased: a new lead of theirs needs their
    consent to be contacted, given after the erasure (`consent.contact`, `consent.given_at`)."""


class EventType(StrEnum):
    RECEIVED = "lead.received"
    ACCEPTED = "lead.accepted"
    UPDATED = "lead.updated"
    CONTACTS_ADDED = "lead.contacts_added"
    DECLINED = "lead.declined"
    EXPIRED = "lead.expired"
    WON = "lead.won"
    LOST = "lead.lost"
    FAVORITED = "lead.favorited"
    UNFAVORITED = "lead.unfavorited"
    CONTACT_REQUEST_AGED = "lead.contact_request_aged"
    REOFFERED = "lead.reoffered"
    """On the lead a partner declined or let expire: it went to the next candidate
    (who, it does not say: the partner never learns)."""
    UNROUTABLE = "lead.unroutable"
    """On the lead a partner declined or let expire: nobody else gets it (`reason` says why)."""
    REOPENED = "lead.reopened"
    """A declined or expired lead is open again: its partner undid the decline, or its
    referrer reopened it (`actor`, `reason`, `reopen_count`, `from_outcome`)."""
    ACTIVITY_LOGGED = "lead.activity_logged"
    """A partner user logged a call, e-mail, meeting or note on an accepted deal."""
    SNOOZED = "lead.snoozed"
    """A partner paused an accepted deal's idle clock until `lead.snoozed_until`."""
    DEAL_IDLE = "lead.deal_idle"
    """An accepted deal has not moved (`days_idle`, `step`: nudge, then escalate)."""
    CLOSE_DATE_PASSED = "lead.close_date_passed"
    """An accepted deal's expected close date passed, plus `LEADS_CLOSE_DATE_GRACE`."""
    CUSTOMER_ERASED = "lead.customer_erased"
    """The customer asked to be forgotten (`request_id`): their contact data is gone from
    the lead; a connector erases its copy too."""
    DUPLICATE_FLAGGED = "lead.duplicate_flagged"
    """On a new lead that looks like an open lead of the same partner (`possible_duplicate_of`)."""


class NotificationTemplate(StrEnum):
    NEW_LEAD = "new_lead"
    CHOOSE_ANOTHER_PARTNER = "choose_another_partner"
    LEAD_EXPIRED = "lead_expired"
    EXPIRY_REMINDER = "expiry_reminder"
    CONTACT_REQUEST_AGING = "contact_request_aging"
    DEAL_IDLE = "deal_idle"
    """To the partner's alert contacts (`step: nudge`), then its admins (`escalate`): an
    accepted deal has not moved."""
    LEAD_REOFFERED = "lead_reoffered"
    """To the referrer: its lead went to the next candidate."""
    LEAD_UNROUTABLE = "lead_unroutable"
    """To the referrer: its lead has nobody left to go to."""
    LEAD_REOPENED = "lead_reopened"
    """To the partner: its referrer reopened a lead it had declined or let expire."""
    PASSED_TO_ANOTHER_PARTNER = "passed_to_another_partner"
    """To the customer, instead of `choose_another_partner`: another partner has it now."""


INBOUND_TOPICS = (
    Topic.INBOUND,
    Topic.PARTNER_ACTIONS,
    Topic.COMMANDS,
    Topic.PROFILES,
    Topic.PRIVACY_REQUESTS,
)
OUTBOUND_TOPICS = (
    Topic.EVENTS,
    Topic.NOTIFICATIONS,
    Topic.REJECTED,
    Topic.PERFORMANCE,
    Topic.DEAD_LETTER,
    Topic.STATE,
    Topic.PRIVACY_OUTCOMES,
)
COMPACTED_TOPICS = (Topic.STATE,)
"""Kept by key, not by time: the latest record of each key stays (`cleanup.policy=compact`)."""
