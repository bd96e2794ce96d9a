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


FILTER_FIELDS = ("book_type", "min_confidence", "max_confidence", "created_after", "created_before",
                 "source_path_pattern", "max_count")


def filter_values(params) -> dict[str, str]:
    """The batch-filter fields present in a query string or form, as given (for refilling the form)."""
    return {name: params.get(name, "").strip() for name in FILTER_FIELDS if params.get(name, "").strip()}


def make_filter(params, state: str | None = None):
    """A validated ``BatchFilter`` from form fields; ``state`` fixes the state criterion."""
    from agentic_pipeline.batch import filters

    values = filter_values(params)
    state = state or params.get("state") or None
    return filters.make_filter(state=state, **values)


def page_links(request: Request, offset: int, limit: int, total: int) -> dict[str, Any]:
    """Links to the previous and next page of a list (None at either end)."""
    def at(new_offset: int) -> str:
        return with_params(request, offset=new_offset)

    return {"prev": at(max(0, offset - limit)) if offset > 0 else None,
            "next": at(offset + limit) if offset + limit < total else None,
            "first": offset + 1 if total else 0, "last": min(offset + limit, total), "total": total}


def form_of(request: Request) -> dict[str, str]:
    """The posted form (already read and size-checked by the middleware), as plain strings."""
    import urllib.parse

    body = request.scope.get("state", {}).get("body", b"")
    return {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                        keep_blank_values=True).items()}


def with_params(request: Request, **changes: Any) -> str:
    """The current URL with some query parameters replaced (None removes one); notices are dropped."""
    from urllib.parse import urlencode

    params = {k: v for k, v in request.query_params.items() if k != "notice"}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return f"{request.url.path}?{urlencode(params)}"


def local_url(value: str | None, default: str) -> str:
    """``value`` when it is a path on this site (no scheme, no ``//host``), else ``default``: no open redirect."""
    value = value or ""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else default
