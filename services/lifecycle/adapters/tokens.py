"""Bearer tokens (JWT): who is calling the read API, for which partner, in which role."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import StrictStr, TypeAdapter, ValidationError

from contracts.common import Id
from services.lifecycle.settings import Settings

# Ids in tokens are checked exactly like ids in messages, on the whole string.
_PARTNER_ID: TypeAdapter[str] = TypeAdapter(Id)
_ROLE: TypeAdapter[str] = TypeAdapter(StrictStr)


class Unauthenticated(Exception):
    """No token, or one that cannot be trusted. The message says which, never why in detail."""


class NoTokenKey(Exception):
    """Neither LEADS_JWT_SECRET nor LEADS_JWT_PUBLIC_KEY is set, or the key is unusable."""


@dataclass(frozen=True)
class Principal:
    partner_id: str
    role: str
    subject: str | None


def _public_key(pem: str) -> tuple[Any, str]:
    """The key and the one algorithm it verifies: an RSA key only RS256, a P-256
    key only ES256, so a token cannot pick another family for the same key."""
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as error:
        raise NoTokenKey("LEADS_JWT_PUBLIC_KEY is not a PEM public key") from error
    if isinstance(key, rsa.RSAPublicKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, "ES256"
    raise NoTokenKey("LEADS_JWT_PUBLIC_KEY must be an RSA or a P-256 (ES256) public key")


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        if settings.jwt_public_key:
            self._key, algorithm = _public_key(settings.jwt_public_key)
        elif settings.jwt_secret is not None:
            self._key, algorithm = settings.jwt_secret.get_secret_value(), "HS256"
        else:
            raise NoTokenKey("set LEADS_JWT_SECRET (HS256) or LEADS_JWT_PUBLIC_KEY")
        self._algorithms = [algorithm]
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
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
            # Whatever the library raises (bad header, key type, claims): not trusted.
            raise Unauthenticated("token invalid") from None
        try:
            partner_id = _PARTNER_ID.validate_python(claims["partner_id"], strict=True)
            role = _ROLE.validate_python(claims["role"])
        except ValidationError:
            raise Unauthenticated("token names no valid partner_id or role") from None
        subject = claims.get("sub")
        return Principal(partner_id, role, subject if isinstance(subject, str) else None)


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
