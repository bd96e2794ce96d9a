"""Batch actions by filter: the CLI's plan, then apply; preview with counts and first rows, confirm, apply.

The preview is ``batch.operations.preview`` (a plan and a single-use token issued for exactly its books);
the confirmation needs the matched count typed in, and applies through ``execute_confirmed``, which
re-plans and refuses if the books changed since the preview. More matches than the maximum is the
operations' own refusal (``MaxCountExceeded``), shown as it is.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from agentic_pipeline import errors
from agentic_pipeline.batch import operations as batch_ops
from agentic_pipeline.interfaces.web.rendering import render
from agentic_pipeline.interfaces.web.pages import common

OPERATIONS = ("approve", "reject", "retry", "priority")
PREVIEW_ROWS = 20


def confirmations(request: Request):
    state = request.app.state
    if not hasattr(state, "confirmations"):
        from agentic_pipeline.batch.confirmations import Confirmations

        state.confirmations = Confirmations()
    return state.confirmations


def _form(params) -> dict:
    operation = params.get("operation", "approve")
    if operation not in OPERATIONS:
        raise errors.InputError(f"unknown batch operation {operation!r}; use one of {', '.join(OPERATIONS)}")
    default_state = {"approve": "pending_approval", "reject": "pending_approval", "retry": "failed"}.get(operation)
    return {"operation": operation, "state": params.get("state") or default_state or "",
            "reason": (params.get("reason") or "").strip(), "priority": params.get("priority", ""),
            "values": common.filter_values(params)}


def _change(form: dict) -> dict:
    if form["operation"] == "reject":
        if not form["reason"]:
            raise errors.InputError("a batch rejection needs a reason: say what is wrong with these books")
        return {"reason": form["reason"]}
    if form["operation"] == "approve":
        return {"reason": form["reason"] or None}
    if form["operation"] == "priority":
        return {"priority": common.int_arg(form["priority"], "priority", low=1, high=10)}
    return {}


def batch_page(request: Request):
    form = _form(request.query_params)
    return render(request, "batch.html", f=form, values=form["values"], preview=None, error=None,
                  book_types=_types(), states=_states())


def preview(request: Request):
    app = common.app_of(request)
    posted = common.form_of(request)
    form = _form(posted)
    try:
        filt = common.make_filter(posted, form["state"] or None)
        plan = batch_ops.preview(app, form["operation"], filt, confirmations(request), **_change(form))
        error = None
    except (errors.InputError, errors.MaxCountExceeded) as exc:
        plan, error = None, exc
    return render(request, "batch.html", 200 if error is None else 409 if isinstance(error, errors.PolicyDenied)
                  else 400, f=form, values=form["values"], preview=plan, error=error, shown=PREVIEW_ROWS,
                  book_types=_types(), states=_states())


def apply(request: Request):
    app = common.app_of(request)
    posted = common.form_of(request)
    form = _form(posted)
    typed = (posted.get("typed_count") or "").strip()
    expected = posted.get("expected_count", "")
    if typed != expected:
        raise errors.InputError(f"type the number of matched books ({expected}) to confirm; nothing was changed")
    filt = common.make_filter(posted, form["state"] or None)
    try:
        done = batch_ops.execute_confirmed(app, form["operation"], filt, posted.get("token", ""),
                                           confirmations=confirmations(request), actor=common.actor_of(request),
                                           **_change(form))
    except errors.StaleConfirmation as exc:
        return render(request, "batch.html", 409, f=form, values=form["values"], preview=exc.preview, error=exc,
                      shown=PREVIEW_ROWS, book_types=_types(), states=_states())
    return render(request, "batch_done.html", r=done["result"], f=form)


def _types():
    from agentic_pipeline.batch import filters

    return filters.BOOK_TYPES


def _states():
    from agentic_pipeline.pipeline import states

    return [s.value for s in states.State]


ROUTES = [
    Route("/batch", batch_page),
    Route("/batch/preview", preview, methods=["POST"]),
    Route("/batch/apply", apply, methods=["POST"]),
]
