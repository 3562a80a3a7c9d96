"""Who calls: the partner always comes from the bearer token, never from the path or
query, and only in a role that may work on leads."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError

from contracts.actions import PARTNER_ROLES
from contracts.common import Id
from services.lifecycle.adapters.tokens import Principal, TokenVerifier, Unauthenticated
from services.lifecycle.service_layer.actions import Caller

Authenticate = Callable[..., Principal]
"""The dependency that yields the partner's verified token: `Depends(authenticate)`."""

_USER: TypeAdapter[str] = TypeAdapter(Id)


def partner_authentication(verifier: TokenVerifier) -> Authenticate:
    """The dependency that verifies the bearer token and its role."""
    bearer = HTTPBearer(
        auto_error=False,
        bearerFormat="JWT",
        scheme_name="bearer",
        description="JWT with `partner_id` and `role` claims",
    )

    def authenticated_partner(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if len(request.headers.getlist("authorization")) > 1:
            raise HTTPException(400, "send one Authorization header, not several")
        if credentials is None:
            raise Unauthenticated("a bearer token is required")
        principal = verifier.verify(credentials.credentials)
        if principal.role not in PARTNER_ROLES:
            raise HTTPException(403, "the token's role may not read leads")
        return principal

    return authenticated_partner


def acting_caller(principal: Principal) -> Caller:
    """The actor of an action: the token's user (`sub`), in the token's role."""
    try:
        user_id = _USER.validate_python(principal.subject, strict=True)
    except ValidationError:
        raise HTTPException(
            403, "the token names no user (`sub`: 1..64 of [A-Za-z0-9._:-]) who may act"
        ) from None
    return Caller(principal.partner_id, user_id, principal.role)
