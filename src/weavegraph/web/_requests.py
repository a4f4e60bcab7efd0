"""Reading requests: bounded JSON bodies, the run request, and JSON error responses."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._json import JSONValue
from .._message import Message
from .._state import VersionedState

__all__ = ["ApiError", "error_response", "parse_run_request", "read_json"]


class ApiError(Exception):
    """A client error, answered with `status` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The JSON error every endpoint answers with: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def api_error(request: Request, exc: Exception) -> Response:
    """Exception handler for `ApiError`."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


async def http_error(request: Request, exc: Exception) -> Response:
    """Exception handler for Starlette's own errors (unknown path, wrong method)."""
    assert isinstance(exc, HTTPException)
    message = f"{exc.detail}: {request.method} {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and "Allow" in headers:
        # Starlette lists a route's methods from a set: sort them for a stable answer.
        allow = headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
        message += f" (allowed: {allow})"
    return error_response(exc.status_code, message, headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """Last-resort handler: a JSON 500 (the traceback goes to the server's log)."""
    return error_response(500, f"internal server error: {type(exc).__name__}")


async def read_json(request: Request, limit: int) -> JSONValue:
    """The request body as JSON, refusing bodies over `limit` bytes before reading them all.

    Raises:
        ApiError: 413 for a body that is too large, 400 for one that is not JSON.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes is over the limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body is over the limit of {limit} bytes")
    if not body:
        raise ApiError(400, 'request body is empty; send a JSON object such as {"input": "hi"}')
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None


def _kind(value: JSONValue) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def parse_run_request(body: JSONValue) -> VersionedState:
    """The initial state a ``POST /runs`` body asks for.

    ``{"input": "text"}`` starts from one user message; ``{"state": {...}}`` from a state in the
    `VersionedState.to_dict()` shape or the short ``{"messages": [...], "extra": {...}}`` one.

    Raises:
        ApiError: 422 naming what is wrong.
    """
    if not isinstance(body, dict):
        raise ApiError(422, f"request body must be a JSON object; got {_kind(body)}")
    unknown = sorted(set(body) - {"input", "state"})
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(unknown)}; send 'input' or 'state'")
    if ("input" in body) == ("state" in body):
        raise ApiError(422, "send exactly one of 'input' (a user message) or 'state'")
    if "input" in body:
        text = body["input"]
        if not isinstance(text, str):
            raise ApiError(422, f"'input' must be a string; got {_kind(text)}")
        return VersionedState.with_user_message(text)
    return _state(body["state"])


def _state(data: JSONValue) -> VersionedState:
    if not isinstance(data, dict):
        raise ApiError(422, f"'state' must be a JSON object; got {_kind(data)}")
    try:
        if isinstance(data.get("messages"), dict):  # the full VersionedState.to_dict() shape
            return VersionedState.from_dict(data)
        unknown = sorted(set(data) - {"messages", "extra"})
        if unknown:
            raise ApiError(422, f"unknown state field(s): {', '.join(unknown)}")
        messages, extra = data.get("messages", []), data.get("extra", {})
        if not isinstance(messages, list):
            raise ApiError(422, f"'state.messages' must be an array; got {_kind(messages)}")
        if not isinstance(extra, dict):
            raise ApiError(422, f"'state.extra' must be an object; got {_kind(extra)}")
        for message in messages:
            if not isinstance(message, dict):
                raise ApiError(422, f"each message must be an object; got {_kind(message)}")
        return VersionedState(messages=[Message.from_dict(m) for m in messages], extra=extra)
    except (ValueError, TypeError) as exc:
        raise ApiError(422, f"'state' is not a valid state: {exc}") from None
