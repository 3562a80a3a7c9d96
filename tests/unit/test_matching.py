"""Two leads of one customer at one partner share a key; nothing else links them, and
no key shows the customer's e-mail or phone."""

import pytest

from contracts.events import MatchedOn
from services.lifecycle.domain.matching import (
    company_domain,
    e164,
    match_keys,
    normalised_company,
    source_key,
)

PARTNER = "partner-1"


def keys(
    email: str | None = "jane.doe@acme.de",
    phone: str | None = "+49 30 1234567",
    company_name: str = "Acme GmbH",
    country: str = "DE",
    partner_id: str = PARTNER,
) -> dict[MatchedOn, str]:
    return dict(match_keys(partner_id, email, phone, company_name, country))


def test_a_lead_with_email_phone_and_company_domain_has_all_three_keys() -> None:
    assert set(keys()) == {MatchedOn.EMAIL, MatchedOn.PHONE, MatchedOn.COMPANY_DOMAIN}


def test_the_same_email_in_another_case_or_with_spaces_gives_the_same_key() -> None:
    assert (
        keys(email="jane.doe@acme.de")[MatchedOn.EMAIL]
        == keys(email="  Jane.Doe@ACME.de ")[MatchedOn.EMAIL]
    )


def test_another_email_gives_another_key() -> None:
    assert (
        keys(email="jane.doe@acme.de")[MatchedOn.EMAIL]
        != keys(email="john@acme.de")[MatchedOn.EMAIL]
    )


@pytest.mark.parametrize("written", ["+49 30 1234567", "030 1234567", "+49 (30) 123-4567"])
def test_one_phone_written_three_ways_gives_one_key(written: str) -> None:
    assert keys(phone=written)[MatchedOn.PHONE] == keys(phone="+49301234567")[MatchedOn.PHONE]


def test_a_national_number_is_read_as_the_customers_countrys() -> None:
    assert e164("030 1234567", "DE") == "+49301234567"
    assert e164("030 1234567", "AT") == "+43301234567"


@pytest.mark.parametrize("phone", ["12", "+1 12", "+999 123 456", "(((---)))"])
def test_an_impossible_phone_gives_no_phone_key(phone: str) -> None:
    assert e164(phone, "US") is None
    assert MatchedOn.PHONE not in keys(phone=phone, country="US")


def test_a_national_number_in_a_country_without_phone_numbers_gives_no_phone_key() -> None:
    assert MatchedOn.PHONE not in keys(phone="030 1234567", country="AQ")  # Antarctica


def test_no_phone_gives_no_phone_key() -> None:
    assert MatchedOn.PHONE not in keys(phone=None)


def test_one_company_spelt_two_ways_at_one_domain_gives_one_key() -> None:
    assert (
        keys(company_name="Acme GmbH")[MatchedOn.COMPANY_DOMAIN]
        == keys(company_name="ACME, gmbh.")[MatchedOn.COMPANY_DOMAIN]
    )


def test_the_same_company_name_at_another_domain_gives_another_key() -> None:
    assert (
        keys(email="jane@acme.de")[MatchedOn.COMPANY_DOMAIN]
        != keys(email="jane@acme.fr")[MatchedOn.COMPANY_DOMAIN]
    )


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("Acme Holdings GmbH & Co. KG", "acme holdings"),
        ("Grupo Bimbo, S.A. de C.V.", "grupo bimbo"),
        ("O\u2019Reilly Media, Inc.", "oreilly media"),  # a typographic apostrophe
        ("Müller-Lüdenscheid S.p.A.", "müller lüdenscheid"),
        ("Acme™ Pty Ltd", "acme"),
        ("\uff21\uff23\uff2d\uff25 \uff27\uff4d\uff42\uff28", "acme"),  # full-width letters
        ("Limited Editions Inc", "limited editions"),  # a legal form only at the end
    ],
)
def test_a_company_name_loses_case_punctuation_and_trailing_legal_forms(
    name: str, normalised: str
) -> None:
    assert normalised_company(name) == normalised
    assert normalised_company(normalised) == normalised


@pytest.mark.parametrize(
    "email",
    ["jane@gmail.com", "jane@googlemail.com", "jane@hotmail.fr", "jane@yahoo.co.uk", "jane@web.de"],
)
def test_a_freemail_address_gives_no_company_domain_key(email: str) -> None:
    assert company_domain(email, "Acme GmbH") is None
    assert set(keys(email=email)) == {MatchedOn.EMAIL, MatchedOn.PHONE}


def test_a_company_domain_that_only_starts_like_a_mail_provider_is_a_company_domain() -> None:
    assert company_domain("jane@live.acme.de", "Acme GmbH") == "live.acme.de|acme"


def test_a_company_name_that_is_only_a_legal_form_gives_no_company_domain_key() -> None:
    assert MatchedOn.COMPANY_DOMAIN not in keys(company_name="GmbH")


def test_no_email_gives_neither_email_nor_company_domain_key() -> None:
    assert set(keys(email=None)) == {MatchedOn.PHONE}


def test_the_same_customer_at_two_partners_shares_no_key() -> None:
    at_one, at_another = keys(partner_id="partner-1"), keys(partner_id="partner-2")
    assert at_one.keys() == at_another.keys()
    assert not set(at_one.values()) & set(at_another.values())


def test_a_key_never_shows_the_email_or_the_phone() -> None:
    email, phone = "jane.doe@acme.de", "+49301234567"
    for key in keys(email=email, phone=phone).values():
        for secret in (email, "jane.doe", "acme.de", phone, "301234567"):
            assert secret not in key


def test_keys_are_stable_across_calls() -> None:
    assert keys() == keys()


def test_a_source_key_is_stable_and_differs_per_referrer_and_lead() -> None:
    key = source_key("referrer-1", "lead-7")
    assert key == source_key("referrer-1", "lead-7")
    assert key != source_key("referrer-2", "lead-7")
    assert key != source_key("referrer-1", "lead-8")
    assert "lead-7" not in key
