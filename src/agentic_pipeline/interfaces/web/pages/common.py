"""Helpers the pages share: reading query and form values with clear errors, redirects after a write."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse

from agentic_pipeline import errors


def app_of(request: Request):
    return request.app.state.pipeline_app


def actor_of(request: Request) -> str:
    return request.scope["state"]["actor"]


def int_arg(value: Any, name: str, default: int | None = None, *, low: int | None = None,
            high: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise errors.InputError(f"{name} must be a whole number, not {value!r}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise errors.InputError(f"{name} must be between {low} and {high}, not {number}")
    return number


def float_arg(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.InputError(f"{name} must be a number, not {value!r}") from None


def back(url: str, message: str | None = None) -> RedirectResponse:
    """303 to ``url`` (Post/Redirect/Get), with a one-line notice shown by the next page."""
    from urllib.parse import quote

    sep = "&" if "?" in url else "?"
    return RedirectResponse(url + (f"{sep}notice={quote(message)}" if message else ""), 303)
