"""`partners.profiles`: a partner's business profile (upsert, newest `updated_at` wins)."""

from typing import Annotated

from pydantic import Field, StringConstraints

from contracts.common import Contact, Contract, Country, Id, MessageId, Name, UtcDatetime

Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Location(Contract):
    location_id: Id
    country: Country
    contacts: Annotated[list[Contact], Field(max_length=50)] = []


class Preferences(Contract):
    company_sizes: Annotated[list[Keyword], Field(max_length=20)] = []
    industries: Annotated[list[Keyword], Field(max_length=50)] = []
    countries: Annotated[list[Country], Field(max_length=250)] = []
    keywords: Annotated[list[Keyword], Field(max_length=100)] = []


class PartnerProfile(Contract):
    message_id: MessageId
    partner_id: Id
    name: Name
    updated_at: UtcDatetime
    locations: Annotated[list[Location], Field(max_length=200)] = []
    preferences: Preferences = Preferences()
