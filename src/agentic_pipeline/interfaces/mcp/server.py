"""The MCP server: a thin skin over the operations, for AI assistants, on stdio.

``create_server(settings)`` builds the server; nothing connects at import time. The ``App`` is
opened in the server's lifespan and closed when the client goes away. The tools are defined in
``review`` (health, approvals), ``book`` (one book, audit, library) and ``batch`` (batch tools),
imported here statically; what they share is in ``common``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, AsyncIterator, Callable

from agentic_pipeline import config, errors
from agentic_pipeline.interfaces.mcp import batch, book, review
from agentic_pipeline.interfaces.mcp.common import ServerState, ToolSpec

SERVER_NAME = "agentic-pipeline"
INSTRUCTIONS = (
    "Operate a book-processing pipeline: books are queued, processed (classified, chunked, validated), "
    "wait for approval, then are embedded into a searchable library. Start with get_pipeline_health. "
    "Batch tools never act on the first call: call them with execute=false, show the preview to the user, "
    "then call again with execute=true and the confirmation token from the preview."
)


def create_server(settings: config.Settings | None = None):
    """Build the MCP server for ``settings`` (default: loaded from the environment); the App opens in its lifespan."""
    from mcp.server.mcpserver import MCPServer

    from agentic_pipeline import __version__

    settings = settings or config.load()
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, version=__version__, log_level="WARNING",
                       lifespan=_lifespan(settings))
    for spec in tool_specs():
        server.add_tool(spec.fn, name=spec.fn.__name__, annotations=spec.annotations, structured_output=True,
                        description=describe(spec.fn))
        refuse_unknown_arguments(server._tool_manager.get_tool(spec.fn.__name__))
    return server


def describe(fn) -> str:
    """The tool's docstring, ending with the bound on its answer (``answers.MAX_BYTES``)."""
    import inspect

    from agentic_pipeline.interfaces.mcp import answers

    doc = inspect.cleandoc(fn.__doc__ or "")
    return doc if answers.BOUND in doc else f"{doc}\n\n{answers.BOUND}."


def refuse_unknown_arguments(tool) -> None:
    """An argument the tool does not have is an error, not ignored: a mistyped filter field (say
    ``source_pattern``) must not widen a batch to every book. The schema says so too
    (``additionalProperties: false``)."""
    from pydantic import ConfigDict

    base = tool.fn_metadata.arg_model
    strict = type(base.__name__, (base,), {"model_config": ConfigDict(**base.model_config, extra="forbid"),
                                           "__module__": base.__module__})
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)


def tool_specs() -> list[ToolSpec]:
    """Every tool the server exposes, in listing order."""
    return [*review.TOOLS, *book.TOOLS, *batch.TOOLS]


def _lifespan(settings: config.Settings) -> Callable[[Any], contextlib.AbstractAsyncContextManager[ServerState]]:
    @contextlib.asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[ServerState]:
        from agentic_pipeline.app import App

        state = ServerState(settings)
        try:
            state.app = App.open(settings)
        except errors.PipelineError as exc:  # reported by every tool call, so the model can tell the user
            logging.getLogger(__name__).warning("cannot open the database: %s", exc)
            state.error = exc
        try:
            yield state
        finally:
            if state.app is not None:
                state.app.close()

    return lifespan


def run_stdio(settings: config.Settings | None = None) -> None:
    """Serve on stdin/stdout until the client disconnects."""
    create_server(settings).run("stdio")
