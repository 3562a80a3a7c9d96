"""The read API against hostile callers: every token that cannot be verified is a
401, forged or foreign cursors a 400, and every error an RFC 9457 problem that
repeats nothing the caller sent. The service's own API on a real MongoDB."""

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr

from contracts.profiles import PartnerProfile
from services.dev_servers import free_port
from services.lifecycle.adapters.tokens import TokenVerifier, issue
from services.lifecycle.entrypoints.app import LifecycleApp
from services.lifecycle.entrypoints.http import create_api
from services.lifecycle.service_layer.inbox import Inbox
from services.lifecycle.settings import Settings

PARTNER = "partner-1"
ISSUER, AUDIENCE = "https://login.example/tenant", "leads-read-api"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ATTACKER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_EC = ec.generate_private_key(ec.SECP256R1())
HS_SECRET = "a-secret-of-sixty-four-bytes-" + "0123456789abcdef" * 3


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Mode:
    """How the service verifies tokens, and how a legitimate issuer signs them."""

    name: str
    algorithm: str
    signing_key: Any
    settings: dict[str, Any]


MODES = {
    "HS256": Mode("HS256", "HS256", HS_SECRET, {"jwt_secret": SecretStr(HS_SECRET)}),
    "RS256": Mode("RS256", "RS256", RSA_KEY, {"jwt_public_key": pem(RSA_KEY)}),
    "ES256": Mode("ES256", "ES256", EC_KEY, {"jwt_public_key": pem(EC_KEY)}),
}


def claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    found = {
        "partner_id": PARTNER,
        "role": "referrals_admin",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    found.update(overrides)
    return {k: v for k, v in found.items() if v is not None}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encoded(part: dict[str, Any]) -> str:
    return b64(json.dumps(part, default=lambda d: int(d.timestamp())).encode())


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{encoded(header)}.{encoded(payload)}."


Attack = Callable[[Mode], str]

ATTACKS: dict[str, Attack] = {
    "alg none": lambda m: unsigned({"alg": "none", "typ": "JWT"}, claims()),
    "alg none, signed": lambda m: jwt.encode(claims(), "", algorithm="none"),
    "another secret": lambda m: jwt.encode(claims(), HS_SECRET + "-not", algorithm="HS256"),
    "HS384 with the secret": lambda m: jwt.encode(claims(), HS_SECRET, algorithm="HS384"),
    "HS512 with the secret": lambda m: jwt.encode(claims(), HS_SECRET, algorithm="HS512"),
    "HS256 keyed with the public key (key confusion)": lambda m: _hs256(
        str(m.settings.get("jwt_public_key") or pem(RSA_KEY)).encode()
    ),
    "RS256 by another key": lambda m: jwt.encode(claims(), ATTACKER_RSA, algorithm="RS256"),
    "ES256 by another key": lambda m: jwt.encode(claims(), ATTACKER_EC, algorithm="ES256"),
    "RS512 by the right key family": lambda m: jwt.encode(claims(), RSA_KEY, algorithm="RS512"),
    "PS256 by the right key family": lambda m: jwt.encode(claims(), RSA_KEY, algorithm="PS256"),
    "jku and x5u pointing elsewhere": lambda m: jwt.encode(
        claims(),
        ATTACKER_RSA,
        algorithm="RS256",
        headers={"jku": "https://attacker.example/jwks", "x5u": "https://attacker.example/c"},
    ),
    "kid naming an empty file, signed with no key": lambda m: _hs256(
        b"", {"kid": "../../../../dev/null"}
    ),
    "kid not a string": lambda m: _hs256(HS_SECRET.encode(), {"kid": [1]}),
    "malformed header": lambda m: "eyJhbGciOiJIUzI1NiIs.eyJ9.c2ln",
    "not a JWT": lambda m: "garbage",
    "expired": lambda m: _signed(m, claims(exp=datetime.now(UTC) - timedelta(minutes=5))),
    "not yet valid": lambda m: _signed(m, claims(nbf=datetime.now(UTC) + timedelta(hours=1))),
    "issued in the future": lambda m: _signed(m, claims(iat=datetime.now(UTC) + timedelta(days=1))),
    "another issuer": lambda m: _signed(m, claims(iss="https://attacker.example")),
    "another audience": lambda m: _signed(m, claims(aud="someone-else")),
    "no exp": lambda m: _signed(m, claims(exp=None)),
    "exp not a number": lambda m: _signed(m, claims(exp="tomorrow")),
    "no partner_id": lambda m: _signed(m, claims(partner_id=None)),
    "partner_id ending in a newline": lambda m: _signed(m, claims(partner_id=f"{PARTNER}\n")),
    "partner_id of 10,000 characters": lambda m: _signed(m, claims(partner_id="p" * 10_000)),
    "partner_id of 65 characters": lambda m: _signed(m, claims(partner_id="p" * 65)),
    "partner_id not a string": lambda m: _signed(m, claims(partner_id=["partner-1"])),
    "partner_id with a space": lambda m: _signed(m, claims(partner_id="partner 1")),
    "role not a string": lambda m: _signed(m, claims(role={"admin": True})),
}


def _signed(mode: Mode, payload: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    """Signed by the legitimate issuer: only the claims or header are wrong."""
    return jwt.encode(payload, mode.signing_key, algorithm=mode.algorithm, headers=headers)


def _hs256(key: bytes, header: dict[str, Any] | None = None) -> str:
    """HS256 by hand, with keys PyJWT refuses to use (a PEM public key, none at all)."""
    signed = f"{encoded({'alg': 'HS256', 'typ': 'JWT', **(header or {})})}.{encoded(claims())}"
    return f"{signed}.{b64(hmac.digest(key, signed.encode(), hashlib.sha256))}"


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = LifecycleApp(settings)
    transport = httpx.ASGITransport(app=app.api)
    async with httpx.AsyncClient(transport=transport, base_url="http://leads") as client:
        yield client
    await app.mongo.close()


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> Mode:
    return MODES[request.param]


@pytest.fixture
async def api(settings: Settings, mode: Mode) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, **mode.settings}
    )
    async for client in _client(configured):
        yield client


def assert_problem(answer: httpx.Response, status: int, *never: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    assert "Traceback" not in answer.text
    for value in never:
        assert value not in answer.text
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_from_the_configured_issuer_is_accepted(
    api: httpx.AsyncClient, mode: Mode
) -> None:
    answer = await api.get("/v1/leads/counts", headers=bearer(_signed(mode, claims())))
    assert answer.status_code == 200, answer.text
    assert answer.json()["marketplace"]["total"] == 0


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_token_that_cannot_be_verified_is_401(
    api: httpx.AsyncClient, mode: Mode, attack: str
) -> None:
    token = ATTACKS[attack](mode)
    answer = await api.get("/v1/leads", headers=bearer(token))
    assert_problem(answer, 401, "p" * 65, token)
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_no_token_or_another_scheme_is_401(api: httpx.AsyncClient, mode: Mode) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer"}):
        answer = await api.get("/v1/performance", headers=headers)
        assert_problem(answer, 401)
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_two_authorization_headers_are_400(api: httpx.AsyncClient, mode: Mode) -> None:
    good = bearer(_signed(mode, claims()))["Authorization"]
    answer = await api.get(
        "/v1/leads/counts", headers=[("Authorization", good), ("Authorization", good)]
    )
    assert_problem(answer, 400)


async def test_a_foreign_role_is_403_without_repeating_it(
    api: httpx.AsyncClient, mode: Mode
) -> None:
    token = _signed(mode, claims(role="customer-<script>"))
    assert_problem(await api.get("/v1/profile", headers=bearer(token)), 403, "<script>")


@pytest.fixture
async def hs_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(settings):
        yield client


def token_for(settings: Settings, partner: str) -> dict[str, str]:
    return bearer(issue(settings, partner, "referrals_admin", datetime.now(UTC)))


async def test_cursors_that_were_not_handed_out_to_this_partner_are_400(
    hs_api: httpx.AsyncClient, settings: Settings
) -> None:
    ours = "eyJ4IjoxfQ.c2lnbmF0dXJl"  # a well-formed but unsigned position
    answer = await hs_api.get(
        "/v1/leads", params={"cursor": ours}, headers=token_for(settings, PARTNER)
    )
    assert_problem(answer, 400, ours)
    for forged in ("not-a-cursor", ".", "%%%", "a" * 512, '["9999-12-31T23:59:59-23:59","x"]'):
        answer = await hs_api.get(
            "/v1/leads", params={"cursor": forged}, headers=token_for(settings, PARTNER)
        )
        assert_problem(answer, 400, forged)


async def test_parameters_out_of_range_are_422_naming_the_field_not_the_value(
    hs_api: httpx.AsyncClient, settings: Settings
) -> None:
    answer = await hs_api.get(
        "/v1/leads",
        params={"limit": "100000", "tab": "<img src=x>", "expiring_within_days": "-1"},
        headers=token_for(settings, PARTNER),
    )
    body = assert_problem(answer, 422, "100000", "<img src=x>")
    assert {(e["location"], e["name"]) for e in body["errors"]} == {
        ("query", "limit"),
        ("query", "tab"),
        ("query", "expiring_within_days"),
    }
    long_id = "lead-" + "x" * 100
    answer = await hs_api.get(f"/v1/leads/{long_id}", headers=token_for(settings, PARTNER))
    assert_problem(answer, 422, long_id)


async def test_unknown_routes_and_missing_leads_are_problems_too(
    hs_api: httpx.AsyncClient, settings: Settings
) -> None:
    assert_problem(await hs_api.get("/v2/secret-admin"), 404, "secret-admin")
    assert_problem(await hs_api.post("/v1/leads"), 405)
    answer = await hs_api.get("/v1/leads/lead-missing", headers=token_for(settings, PARTNER))
    assert_problem(answer, 404, "lead-missing", PARTNER)


async def test_a_database_that_does_not_answer_is_503_with_retry_after(
    settings: Settings,
) -> None:
    gone = settings.model_copy(
        update={"mongodb_uri": f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300"}
    )
    async for client in _client(gone):
        answer = await client.get("/v1/leads/counts", headers=token_for(gone, PARTNER))
        assert_problem(answer, 503)
        assert answer.headers["retry-after"].isdigit()


async def test_even_a_bug_is_answered_as_a_problem(settings: Settings) -> None:
    app = LifecycleApp(settings)

    async def broken_profile(partner_id: str) -> PartnerProfile | None:
        raise RuntimeError("a bug")

    async def nothing_ready() -> dict[str, bool]:
        return {}

    async def no_metrics() -> bytes:
        return b""

    inbox = Inbox(app.inbox, app.clock)
    api = create_api(inbox, TokenVerifier(settings), broken_profile, nothing_ready, no_metrics)
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://leads") as client:
        answer = await client.get("/v1/profile", headers=token_for(settings, PARTNER))
    assert_problem(answer, 500, "a bug")
    await app.mongo.close()
