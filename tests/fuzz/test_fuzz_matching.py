"""Property-based: normalising a normalised value changes nothing (so a stored key is
found again), and no customer the contract admits makes the duplicate keys fail."""

import pycountry
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.events import MatchedOn
from contracts.inbound import Customer
from services.lifecycle.domain.matching import (
    e164,
    match_keys,
    normalised_company,
    normalised_email,
    source_key,
)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PHONE_PATTERN = r"\+?[0-9 ()./-]{3,32}"

countries = st.sampled_from(sorted(country.alpha_2 for country in pycountry.countries))
ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
legal_forms = st.sampled_from(["GmbH", "& Co. KG", "S.A. de C.V.", "Inc.", "A/S", "Sp. z o.o."])
company_names = st.one_of(
    st.text(min_size=1, max_size=200),
    st.tuples(st.text(min_size=1, max_size=40), legal_forms).map(" ".join),
)
freemail_domains = st.sampled_from(["gmail.com", "hotmail.fr", "yahoo.co.uk", "web.de"])
emails = st.one_of(
    st.emails(),
    st.tuples(st.emails(), freemail_domains).map(lambda pair: f"{pair[0].split('@')[0]}@{pair[1]}"),
)
phones = st.one_of(
    st.none(),
    st.from_regex(PHONE_PATTERN, fullmatch=True),
    st.from_regex(r"\+[1-9][0-9]{1,2} [0-9]{2,4} [0-9]{4,8}", fullmatch=True),
    st.from_regex(r"0[1-9][0-9 ]{5,12}", fullmatch=True),
)


@st.composite
def customers(draw: st.DrawFn) -> Customer:
    """A customer the contract admits: candidates that fail validation are dropped."""
    candidate = {
        "company_name": draw(company_names),
        "contact_name": "Jane Doe",
        "email": draw(emails),
        "phone": draw(phones),
        "country": draw(countries),
    }
    try:
        return Customer.model_validate(candidate)
    except ValidationError:
        reject()


@FUZZ
@given(st.one_of(st.text(), emails))
def test_a_normalised_email_stays_as_it_is(email: str) -> None:
    once = normalised_email(email)
    assert normalised_email(once) == once


@FUZZ
@given(company_names)
def test_a_normalised_company_stays_as_it_is(name: str) -> None:
    once = normalised_company(name)
    assert normalised_company(once) == once


@FUZZ
@given(phones, countries, countries)
def test_a_phone_in_e164_reads_the_same_in_any_country(
    phone: str | None, country: str, elsewhere: str
) -> None:
    once = e164(phone, country)
    assert e164(once, elsewhere) == once


@FUZZ
@given(customers(), ids)
def test_any_valid_customer_gets_keys_never_an_error(customer: Customer, partner_id: str) -> None:
    found = dict(
        match_keys(
            partner_id, customer.email, customer.phone, customer.company_name, customer.country
        )
    )
    assert MatchedOn.EMAIL in found  # every valid customer has an e-mail
    for key in found.values():
        assert len(key) == 32 and customer.email not in key


@FUZZ
@given(ids, ids)
def test_any_valid_source_gets_a_key_never_an_error(referrer_id: str, lead_id: str) -> None:
    assert len(source_key(referrer_id, lead_id)) == 32
