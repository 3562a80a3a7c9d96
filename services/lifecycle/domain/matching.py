"""Keys that find two leads of one customer: the e-mail, the phone in E.164, and the
company at its e-mail domain, each normalised, hashed and scoped to the partner.

Keys are only ever compared, so they are kept hashed: the index may outlive the
erasure of a lead's contact data, and it must not hold the e-mail or phone in plain
text. Pure: no I/O, no clock; the costly steps are cached, as every inbound lead
computes its keys.
"""

import functools
import hashlib
import re
import unicodedata

import phonenumbers

from contracts.events import MatchedOn

# The ASCII unit separator: in no id, e-mail or domain; the one free text, a company
# name, comes last, so no two tuples join to the same text.
_SEPARATOR = "\x1f"
_SOURCE_KIND = "source"  # not a MatchedOn: a source key can never equal a match key

# Mail providers whose domain says nothing about the customer's company. Families are
# matched by the label before the registrable suffix, so hotmail.fr and yahoo.co.uk count.
_FREEMAIL_FAMILIES = frozenset(
    {"aol", "gmx", "hotmail", "live", "outlook", "windowslive", "yahoo", "yandex"}
)
_FREEMAIL_DOMAINS = frozenset(
    {
        "126.com", "163.com", "aliyun.com", "arcor.de", "att.net", "bigpond.com",
        "bk.ru", "bol.com.br", "btinternet.com", "comcast.net", "daum.net",
        "email.com", "fastmail.com", "fastmail.fm", "free.fr", "freenet.de",
        "gmail.com", "googlemail.com", "hanmail.net", "hushmail.com", "icloud.com",
        "inbox.ru", "interia.pl", "laposte.net", "libero.it", "list.ru", "mac.com",
        "mail.com", "mail.ru", "mailbox.org", "me.com", "msn.com", "naver.com",
        "o2.pl", "onet.pl", "orange.fr", "pm.me", "posteo.de", "proton.me",
        "protonmail.ch", "protonmail.com", "qq.com", "rambler.ru", "rediffmail.com",
        "rocketmail.com", "sbcglobal.net", "seznam.cz", "sfr.fr", "sina.com",
        "sohu.com", "t-online.de", "tuta.io", "tutanota.com", "uol.com.br",
        "verizon.net", "virginmedia.com", "wanadoo.fr", "web.de", "wp.pl", "ya.ru",
        "yeah.net", "ymail.com", "zoho.com", "zohomail.com",
    }
)  # fmt: skip
# Second-level labels under a country code that are public suffixes (co.uk, com.au):
# enough of the Public Suffix List to find a mail provider's registrable domain.
_SECOND_LEVEL_SUFFIXES = frozenset({"ac", "co", "com", "edu", "gov", "ne", "net", "or", "org"})

# Legal forms, as tokens after punctuation is dropped ("S.A." is "sa", "A/S" is "as").
# They are dropped only from the end of a name, repeatedly: "GmbH & Co. KG" entirely.
_LEGAL_SUFFIXES = frozenset(
    {
        ("ab",), ("ag",), ("ao",), ("aps",), ("as",), ("asa",), ("bhd",), ("bv",),
        ("co",), ("company",), ("corp",), ("corporation",), ("cv",), ("eg",), ("ev",),
        ("eurl",), ("gk",), ("gmbh",), ("inc",), ("incorporated",), ("kft",), ("kg",),
        ("kgaa",), ("kk",), ("limited",), ("llc",), ("llp",), ("lp",), ("ltd",),
        ("ltda",), ("mbh",), ("nv",), ("ohg",), ("oao",), ("ooo",), ("oy",), ("oyj",),
        ("pao",), ("plc",), ("pte",), ("pty",), ("pvt",), ("sa",), ("sarl",), ("sas",),
        ("sasu",), ("sdn",), ("se",), ("sl",), ("slu",), ("spa",), ("srl",), ("sro",),
        ("ug",), ("zao",), ("zrt",), ("doo",), ("private",),
        ("sa", "de", "cv"), ("sp", "z", "oo"), ("haftungsbeschränkt",),
    }
)  # fmt: skip
_LONGEST_SUFFIX = max(len(suffix) for suffix in _LEGAL_SUFFIXES)

# Marks inside abbreviations are deleted, so that "S.A." and "SA" are one token;
# any other punctuation or symbol separates words ("Müller-Lüdenscheid", "AT&T").
_ABBREVIATION_MARKS = frozenset(".'\u2019/")  # the last is a typographic apostrophe
_NOT_A_WORD_CHARACTER = re.compile(r"[^\w\s]|_")

# Readings of a phone until its E.164 form holds; one or two for any real number.
_MOST_READINGS = 8


def normalised_email(email: str) -> str:
    return email.strip().casefold()


@functools.lru_cache(maxsize=65536)
def normalised_company(name: str) -> str:
    """The company name case-folded, without punctuation or trailing legal forms:
    "ACME, gmbh." and "Acme GmbH" are both "acme"."""
    # Symbols go before NFKC too, which would spell "Acme™" as "AcmeTM".
    words = _without_punctuation(_folded(_without_punctuation(name))).split()
    return _folded(" ".join(_without_legal_suffixes(words)))


def company_domain(email: str, company_name: str) -> str | None:
    """The company at its e-mail domain, as `<domain>|<normalised company>`; None when
    the domain is a mail provider's or nothing of the name is left."""
    domain = normalised_email(email).rpartition("@")[2]
    company = normalised_company(company_name)
    if not domain or not company or _is_freemail(domain):
        return None
    return f"{domain}|{company}"


def e164(phone: str | None, country: str) -> str | None:
    """The phone in E.164, a national number read as the customer's country's; None
    when there is none or it cannot be a phone number."""
    return None if phone is None else _e164(phone, country)


def match_keys(
    partner_id: str, email: str | None, phone: str | None, company_name: str, country: str
) -> tuple[tuple[MatchedOn, str], ...]:
    """Each key the lead has, hashed within the partner: leads at other partners
    never match."""
    values = (
        (MatchedOn.EMAIL, normalised_email(email) if email is not None else None),
        (MatchedOn.PHONE, e164(phone, country)),
        (MatchedOn.COMPANY_DOMAIN, company_domain(email, company_name) if email else None),
    )
    return tuple((kind, _hashed(partner_id, kind, value)) for kind, value in values if value)


def source_key(referrer_id: str, source_lead_id: str) -> str:
    """The lead as its sender knows it: the same for every partner it is sent to."""
    return _hashed(referrer_id, _SOURCE_KIND, source_lead_id)


def _hashed(scope: str, kind: str, value: str) -> str:
    text = _SEPARATOR.join((scope, kind, value))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _folded(text: str) -> str:
    # Case folding can undo NFKC ("ǅ" folds to "dž"): normalised again after it.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _without_punctuation(text: str) -> str:
    return _NOT_A_WORD_CHARACTER.sub(_punctuation_replaced, text)


def _punctuation_replaced(match: re.Match[str]) -> str:
    character = match.group()
    if character in _ABBREVIATION_MARKS:
        return ""
    # Outside \w but neither punctuation nor symbol: a combining mark, part of a word.
    return " " if unicodedata.category(character)[0] in "PS" else character


def _without_legal_suffixes(words: list[str]) -> list[str]:
    dropped = True
    while dropped and words:
        dropped = False
        for length in range(min(_LONGEST_SUFFIX, len(words)), 0, -1):
            if tuple(words[-length:]) in _LEGAL_SUFFIXES:
                words, dropped = words[:-length], True
                break
    return words


def _is_freemail(domain: str) -> bool:
    registrable = _registrable_labels(domain.split("."))
    return registrable[0] in _FREEMAIL_FAMILIES or ".".join(registrable) in _FREEMAIL_DOMAINS


def _registrable_labels(labels: list[str]) -> list[str]:
    # "mail.yahoo.co.uk" is registered under the suffix "co.uk", "hotmail.fr" under "fr".
    under_second_level = (
        len(labels) > 2 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL_SUFFIXES
    )
    return labels[-3:] if under_second_level else labels[-2:]


@functools.lru_cache(maxsize=65536)
def _e164(phone: str, country: str) -> str | None:
    # phonenumbers is thorough and slow (about 20 µs a number): a customer's phone
    # comes back with each lead, so each (phone, country) is read once. It may read its
    # own E.164 differently ("+377 000 165556" loses a zero each time, taken for a trunk
    # prefix): read again until it holds, so that the number typed in E.164 matches it.
    text = phone
    for _ in range(_MOST_READINGS):
        formatted = _formatted_if_possible(text, country)
        if formatted is None or formatted == text:
            return formatted
        text = formatted
    return None  # never settles: not a number to match on


def _formatted_if_possible(phone: str, country: str) -> str | None:
    try:
        number = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
