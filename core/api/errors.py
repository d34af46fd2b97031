"""Errors in OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``), so
existing clients show them, and the handlers that turn every failure into one.

Only a full queue (503) is worth a retry: OpenAI's clients retry 408, 409, 429 and 5xx,
so a model the server cannot load is a 400, never a 5xx.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """A request's failure: raised anywhere in a route, answered by :func:`error_response`."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def error_response(status: int, message: str, code: str | None = None,
                   param: str | None = None) -> JSONResponse:
    """OpenAI's error body; its ``type`` follows from the status as OpenAI's does."""
    kind = "authentication_error" if status == 401 else \
        "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": code}}, status_code=status)


def unloadable(key: str, exc: Exception) -> ApiError:
    """A model the server cannot load: a client error, so that no client retries it."""
    return ApiError(400, f"{key} cannot be loaded here: {exc}", "model_unavailable", "model")


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.message, exc.code, exc.param)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    return error_response(500, f"{type(exc).__name__}: {exc}")


def add_error_handlers(app: FastAPI) -> None:
    """Our errors, Starlette's (404 route, 405 method) and anything unexpected (500), all
    in OpenAI's shape; request validation keeps FastAPI's own 422."""
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
