"""What every MCP tool shares: argument types, the call wrapper, path roots, error rendering.

Types carry ranges and enums, so the schema the model reads refuses a bad value before any
operation runs. ``call`` runs one operation with the lifespan's ``App`` and turns a
``PipelineError`` into a tool error whose text says what the model should do next. Paths the
model names are only read under the configured roots (``mcp_roots``, default: the watch
folder), after symlinks and ``..`` are resolved.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from mcp_types import ToolAnnotations
from pydantic import Field

from agentic_pipeline import config, errors
from agentic_pipeline.batch.confirmations import Confirmations
from agentic_pipeline.batch.filters import BOOK_TYPES
from agentic_pipeline.orchestrator import queueing

#: what the model should do next, by error class (the first matching class wins)
NEXT_STEP: tuple[tuple[type[errors.PipelineError], str], ...] = (
    (errors.NoDatabase, "there is no database there: ask the user to check AGENTIC_PIPELINE_DB in the MCP client's "
                        "configuration (the workers' database), or to create it with `agentic-pipeline init`"),
    (errors.SchemaBehind, "the database schema is behind: ask the user to run `agentic-pipeline init`, then retry"),
    (errors.PathNotAllowed, "use a path inside an allowed root, or tell the user"),
    (errors.InputError, "fix the argument and call the tool again"),
    (errors.NotFound, "check the id: list_pending_approvals, get_stuck_pipelines or get_audit_log show valid ids"),
    (errors.StaleConfirmation, "show the fresh preview to the user, then call again with its confirmation token"),
    (errors.MaxCountExceeded, "narrow the filter or raise max_count, then preview again"),
    (errors.PolicyDenied, "this action is not allowed by the current policy; tell the user"),
    (errors.Conflict, "the book changed meanwhile: call get_pipeline_status and decide again"),
    (errors.InvalidTransition, "call get_pipeline_status to see its state and which actions it allows"),
    (errors.ConfigError, "the server's configuration is invalid: tell the user the message above"),
    (errors.StoreError, "the database failed: retry later or tell the user"),
)


Result = dict[str, Any]

#: the largest id a 64-bit column holds; strict: a JSON integer, not true or "3"
MAX_ID = 2**63 - 1
PipelineId = Annotated[int, Field(ge=1, le=MAX_ID, strict=True,
                                  description="The pipeline id (as shown by other tools, e.g. 'id').")]
Priority = Annotated[int, Field(ge=1, le=10, strict=True, description="1 = most urgent, 5 = normal, 10 = backfill.")]
Reason = Annotated[str, Field(min_length=1, max_length=1000,
                              description="Why, in a sentence; recorded in the audit trail.")]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def write_annotations(*, destructive: bool, idempotent: bool) -> ToolAnnotations:
    return ToolAnnotations(read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent,
                           open_world_hint=False)


@dataclasses.dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Result]
    annotations: ToolAnnotations


BookType = Literal[BOOK_TYPES]  # type: ignore[valid-type]
AnyBookType = Annotated[BookType | None, Field(description="Only books classified as this type (omit for any type).")]
MaxCount = Annotated[int, Field(ge=1, le=10000, strict=True, description=(
    "Refuse (change nothing) if more books than this match; narrow the filter or raise it knowingly."))]
Execute = Annotated[bool, Field(description=(
    "false (default): only preview the matching books and get a confirmation token. true: act, which "
    "requires the confirmation token from the preview."))]
Confirmation = Annotated[str | None, Field(max_length=64, description=(
    "The confirmation_token returned by the preview (execute=false) of this exact same call."))]
def FilterArg(name: str) -> Any:  # noqa: N802 - used as a type
    """The argument type of the batch filter's field ``name``: its JSON schema, the value passed to make_filter as is."""
    from pydantic import WithJsonSchema

    from agentic_pipeline.batch.filters import FIELDS, LIMITS

    field = next(f for f in FIELDS + LIMITS if f.name == name)
    return Annotated[Any, WithJsonSchema(field.json_schema())]


RowLimit = Annotated[int, Field(ge=1, le=100, strict=True, description=(
    "How many rows to show (1-100, default 20); the summary always covers every match."))]
After = Annotated[int | None, Field(ge=0, le=MAX_ID, strict=True, description=(
    "Show the rows after this pipeline id: the next_after of the previous page."))]


@dataclasses.dataclass
class ServerState:
    """What the lifespan yields: the open App, or why it could not be opened."""

    settings: config.Settings
    app: Any = None
    error: errors.PipelineError | None = None
    #: the batch confirmation tokens this server issued
    confirmations: Confirmations = dataclasses.field(default_factory=Confirmations)


# --- what every tool uses -------------------------------------------------------------------------

def tool_error(exc: errors.PipelineError):
    """A ``ToolError`` whose text is the message plus what the model should do next."""
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(error_text(exc))


def error_text(exc: errors.PipelineError) -> str:
    step = next((hint for cls, hint in NEXT_STEP if isinstance(exc, cls)), None)
    # the MCP step replaces the error's own hint, which may name CLI commands the model cannot run
    text = f"{exc.message}. Next: {step}." if step else str(exc)
    preview = exc.data.get("preview") if isinstance(exc.data, dict) else None
    if preview is not None:  # the new token, not the rows: a preview call shows them, a page at a time
        text += (f"\n{preview.get('matched')} books match now; new confirmation_token: "
                 f"{preview.get('confirmation_token')} (call with execute=false to see them first).")
    return text


def state_of(ctx) -> ServerState:
    return ctx.request_context.lifespan_context


def confirmations_of(ctx) -> Confirmations:
    """The batch confirmation tokens this server issued (``batch.confirmations``)."""
    return state_of(ctx).confirmations


def actor_of(ctx) -> str:
    """``mcp:<client name>`` from the client's initialize request (``mcp:unknown-client`` without one)."""
    from agentic_pipeline.audit import actions

    params = getattr(ctx.session, "client_params", None)
    info = getattr(params, "client_info", None)
    return actions.mcp_actor(getattr(info, "name", None))


def call(ctx, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``operation(app, *args, **kwargs)``; a ``PipelineError`` becomes a tool error saying what to do next."""
    state = state_of(ctx)
    try:
        if state.error is not None:
            raise state.error
        return operation(state.app, *args, **kwargs)
    except errors.PipelineError as exc:
        raise tool_error(exc) from exc


def allowed_path(ctx, path: str) -> Path:
    """``path`` resolved (symlinks and ``..``) if it lies under a configured root; else a tool error."""
    try:
        return resolve_under_roots(path, roots_of(state_of(ctx).settings))
    except errors.PipelineError as exc:
        raise tool_error(exc) from exc


def allowed_folder(ctx, path: str, *, recursive: bool) -> Path:
    """Like ``allowed_path``, and refuse a folder holding links whose targets lie outside the roots."""
    folder = allowed_path(ctx, path)
    roots = roots_of(state_of(ctx).settings)
    escaping = links_outside(folder, roots, recursive=recursive)
    if escaping:
        shown = ", ".join(escaping[:5]) + (f" and {len(escaping) - 5} more" if len(escaping) > 5 else "")
        raise tool_error(errors.PathNotAllowed(
            f"{folder} holds links to files outside the allowed roots ({shown}); nothing was queued"))
    return folder


def links_outside(folder: Path, roots: tuple[Path, ...], *, recursive: bool) -> list[str]:
    """The symlinked files a folder walk (links to folders are not followed) would read outside ``roots``."""
    try:
        if not folder.is_dir():
            return []
    except OSError:  # the operation that reads the folder says what is wrong with it
        return []
    real_roots = [Path(r).expanduser().resolve() for r in roots]
    found = []
    for dirpath, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            file = Path(dirpath) / name
            if not file.is_symlink():
                continue
            try:
                real = file.resolve()
            except (RuntimeError, OSError):  # a symlink loop reads nothing: the walk reports it unreadable
                continue
            if not any(real.is_relative_to(r) for r in real_roots):
                found.append(str(file))
        if not recursive:
            break
    return sorted(found)


def roots_of(settings: config.Settings) -> tuple[Path, ...]:
    """The folders the model may read: ``mcp_roots``, else the watch folder, else none."""
    if settings.mcp_roots:
        return tuple(settings.mcp_roots)
    return (settings.watch_dir,) if settings.watch_dir else ()


def resolve_under_roots(path: str, roots: tuple[Path, ...]) -> Path:
    """Resolve ``path`` (relative paths against the first root) and refuse it outside every root."""
    if not roots:
        raise errors.PathNotAllowed(
            "no folders are open to MCP clients: ask the user to set AGENTIC_PIPELINE_MCP_ROOTS to the folders "
            f"assistants may read (separated by {os.pathsep!r}) in the MCP client's configuration "
            "(or AGENTIC_PIPELINE_WATCH_DIR)")
    if not path or not str(path).strip():
        raise errors.InputError("the path is empty")
    if "\x00" in str(path):
        raise errors.InputError("the path contains a NUL character")
    queueing.check_path(path)
    real_roots = [Path(r).expanduser().resolve() for r in roots]
    given = Path(str(path))
    if str(path).startswith("~"):  # only the user's own home: "~other" would name (and reveal) another account's
        if not str(path).startswith(("~/", "~" + os.sep)) and str(path) != "~":
            raise errors.PathNotAllowed(f"{path} is outside the allowed roots: {', '.join(map(str, real_roots))}")
        given = given.expanduser()
    try:
        target = (given if given.is_absolute() else real_roots[0] / given).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop, a name too long
        raise errors.InputError(f"{path} cannot be resolved ({type(exc).__name__}: a symlink loop or a bad name)") \
            from None
    if not any(target.is_relative_to(root) for root in real_roots):
        # the resolved target is not named: that would show where links outside the roots point
        raise errors.PathNotAllowed(f"{path} is outside the allowed roots: {', '.join(map(str, real_roots))}")
    queueing.check_path(target)  # a root plus a relative path can be too long together
    try:
        exists = target.exists()
    except OSError as exc:
        raise queueing.os_error(path, exc) from None
    if not exists:
        raise errors.InputError(f"{path} does not exist under the allowed roots: check the path")
    return target


