"""Bearer tokens (JWT): who is calling the read API, for which partner, in which role."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from contracts.common import ID_PATTERN
from services.lifecycle.settings import Settings

_PUBLIC_KEY_ALGORITHMS = ["RS256", "ES256"]


class Unauthenticated(Exception):
    """No token, or one that cannot be trusted. The message says which, never why in detail."""


class NoTokenKey(Exception):
    """Neither LEADS_JWT_SECRET nor LEADS_JWT_PUBLIC_KEY is set."""


@dataclass(frozen=True)
class Principal:
    partner_id: str
    role: str
    subject: str | None


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        if settings.jwt_public_key:
            self._key: Any = settings.jwt_public_key
            self._algorithms = _PUBLIC_KEY_ALGORITHMS
        elif settings.jwt_secret is not None:
            self._key = settings.jwt_secret.get_secret_value()
            self._algorithms = ["HS256"]
        else:
            raise NoTokenKey("set LEADS_JWT_SECRET (HS256) or LEADS_JWT_PUBLIC_KEY")
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "partner_id", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("token invalid") from None
        partner_id, role = claims["partner_id"], claims["role"]
        if not isinstance(partner_id, str) or not re.match(ID_PATTERN, partner_id):
            raise Unauthenticated("token names no valid partner_id")
        if not isinstance(role, str):
            raise Unauthenticated("token names no valid role")
        return Principal(partner_id, role, claims.get("sub"))


def issue(
    settings: Settings, partner_id: str, role: str, now: datetime, ttl: timedelta | None = None
) -> str:
    """An HS256 token signed with LEADS_JWT_SECRET, for local use and tests."""
    if settings.jwt_secret is None:
        raise NoTokenKey("set LEADS_JWT_SECRET to make tokens")
    claims: dict[str, Any] = {
        "partner_id": partner_id,
        "role": role,
        "sub": f"{partner_id}:{role}",
        "iat": now,
        "exp": now + (ttl or settings.token_ttl),
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
