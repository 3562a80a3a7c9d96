"""Errors as RFC 9457 problem details (`application/problem+json`): one exception
handler per error type, so that routes raise and never translate. A problem never
repeats a submitted value."""

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar, cast

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.lifecycle.adapters.tokens import Unauthenticated
from services.lifecycle.service_layer.actions import (
    BadRequest,
    InvalidAction,
    KeyReused,
    Unavailable,
)
from services.lifecycle.service_layer.inbox import BadCursor

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
RETRY_AFTER_S = 5

E = TypeVar("E", bound=Exception)


class FieldProblem(BaseModel):
    """One parameter that is not valid: where it is and what is wrong, not its value."""

    location: str = Field(description="`query`, `path`, `header` or `body`")
    name: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="URI of the problem type")
    title: str = Field(description="The HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong; never a submitted value")
    errors: list[FieldProblem] | None = Field(
        None, description="Invalid parameters or body fields (422 only)"
    )


def problem(
    status: int,
    detail: str | None,
    headers: Mapping[str, str] | None = None,
    errors: list[FieldProblem] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body = Problem(title=phrase, status=status, detail=detail or phrase, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True), status, headers=headers, media_type=PROBLEM
    )


def answer_problems(api: FastAPI) -> None:
    """Every error the API answers, its own or the framework's, as a problem."""
    _answer(api, StarletteHTTPException, _http_error)
    _answer(api, RequestValidationError, _invalid_parameters)
    _answer(api, Unauthenticated, _unauthenticated)
    _answer(api, BadCursor, _bad_request)
    _answer(api, BadRequest, _bad_request)
    _answer(api, InvalidAction, _invalid_action)
    _answer(api, KeyReused, _key_reused)
    _answer(api, Unavailable, _kafka_unavailable)
    _answer(api, ConnectionFailure, _database_unavailable)
    # A bug: answered as a problem too; Starlette re-raises it so that it is logged.
    _answer(api, Exception, _unforeseen)


def _answer(api: FastAPI, error_type: type[E], answer: Callable[[E], Response]) -> None:
    """Answers errors of this type, and of its subtypes without a handler of their own."""

    async def handler(request: Request, error: Exception) -> Response:
        # Starlette picks the handler by the error's class: `error` is an `E`.
        return answer(cast(E, error))

    api.add_exception_handler(error_type, handler)


def _http_error(error: StarletteHTTPException) -> Response:
    detail = error.detail if isinstance(error.detail, str) else None
    return problem(error.status_code, detail, error.headers)


def _invalid_parameters(error: RequestValidationError) -> Response:
    fields = [_field(e) for e in error.errors()]
    return problem(422, "a parameter is not valid: see `errors`", None, fields)


def _field(error: Any) -> FieldProblem:
    """Where the invalid parameter is and what is wrong, without the submitted value."""
    location, *names = [str(part) for part in error.get("loc", ())] or ["request"]
    return FieldProblem(
        location=location, name=".".join(names), message=str(error.get("msg", "invalid"))
    )


def _unauthenticated(error: Unauthenticated) -> Response:
    return problem(401, str(error), {"WWW-Authenticate": "Bearer"})


def _bad_request(error: BadRequest | BadCursor) -> Response:
    return problem(400, str(error))


def _invalid_action(error: InvalidAction) -> Response:
    fields = [FieldProblem(location="body", name=n, message=m) for n, m in error.problems]
    return problem(422, str(error), None, fields)


def _key_reused(error: KeyReused) -> Response:
    return problem(422, str(error))


def _kafka_unavailable(error: Unavailable) -> Response:
    # The action was not taken: the same key makes the retry the same action.
    detail = f"{error}; retry with the same Idempotency-Key"
    return problem(503, detail, {"Retry-After": str(RETRY_AFTER_S)})


def _database_unavailable(error: ConnectionFailure) -> Response:
    log.warning("read API: MongoDB unavailable", extra={"error_class": type(error).__name__})
    return problem(
        503, "the database does not answer; retry later", {"Retry-After": str(RETRY_AFTER_S)}
    )


def _unforeseen(error: Exception) -> Response:
    return problem(500, "an unforeseen error; it has been logged")
