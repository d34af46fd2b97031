"""The gate in front of every route: the API key (all but /health, which load balancers
and ``ert serve``'s own start-up check call without one) and the upload size, checked
from ``Content-Length`` before a byte of the body is read."""

from __future__ import annotations

from core.api.errors import error_response
from core.api.settings import ServeSettings

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

CallNext = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request, CallNext], Awaitable[Response]]

# Room for the multipart framing and form fields around the file itself.
FORM_SLACK_BYTES = 64 * 1024


def make_guard(settings: ServeSettings, max_bytes: int) -> Guard:
    """The ``http`` middleware for ``settings``: 401 without the key, 413 over the limit."""

    async def guard(request: Request, call_next: CallNext) -> Response:
        if settings.api_key and request.url.path != "/health":
            header = request.headers.get("authorization", "")
            given = header[7:] if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
                return error_response(401, "missing or invalid API key (Authorization: "
                                           "Bearer …)", "invalid_api_key")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_bytes + FORM_SLACK_BYTES:
            return error_response(413, f"request of {int(length) / 2**20:.1f} MB is over the "
                                       f"{settings.max_upload_mb:g} MB limit",
                                  "file_too_large", "file")
        return await call_next(request)

    return guard
