"""A synchronous handle on ``agentic-pipeline mcp`` run as a subprocess, driven by the SDK's stdio client.

The async client lives on a background event loop (an anyio blocking portal), so tests stay plain
functions and one server process can serve a whole test module.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, AsyncIterator

from anyio.from_thread import start_blocking_portal

REPO = Path(__file__).resolve().parents[2]
CLIENT_NAME = "pytest-assistant"


def server_env(db_url: str, roots: list[Path] | None, **extra: str) -> dict[str, str]:
    env = {
        "AGENTIC_PIPELINE_DB": db_url,
        "AGENTIC_PIPELINE_EMBEDDER": "hashing",
        "AGENTIC_PIPELINE_CONFIG": "",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO / "src"),
        "XDG_CONFIG_HOME": str(REPO / "tests" / "mcp" / "no-config"),  # never the user's config.toml
        **extra,
    }
    if roots is not None:
        env["AGENTIC_PIPELINE_MCP_ROOTS"] = os.pathsep.join(map(str, roots))
    return env


@contextlib.asynccontextmanager
async def _connect(env: dict[str, str]) -> AsyncIterator[Any]:
    import mcp_types as types
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=str(entry_point()), args=["mcp"], env=env, cwd=str(REPO))
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=60,
                                     client_info=types.Implementation(name=CLIENT_NAME, version="1.0")) as session:
                await session.initialize()
                yield session


def entry_point() -> Path:
    """The installed ``agentic-pipeline`` console script next to this interpreter."""
    script = Path(sys.executable).parent / ("agentic-pipeline.exe" if os.name == "nt" else "agentic-pipeline")
    assert script.exists(), f"{script} is missing: install the package (pip install -e .)"
    return script


class McpClient:
    """``tools()``, ``call(name, **arguments)`` and ``ok(name, **arguments)`` over one live session."""

    def __init__(self, portal, session) -> None:
        self.portal = portal
        self.session = session
        self.called: set[str] = set()

    def tools(self) -> list[Any]:
        return self.portal.call(self.session.list_tools).tools

    def call(self, name: str, **arguments: Any):
        self.called.add(name)
        return self.portal.call(self.session.call_tool, name, arguments)

    def ok(self, name: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool that must succeed; return its structured content."""
        result = self.call(name, **arguments)
        assert not result.is_error, f"{name} failed: {text(result)}"
        assert result.structured_content is not None, f"{name} returned no structured content"
        return result.structured_content

    def error(self, name: str, **arguments: Any) -> str:
        """Call a tool that must fail; return the error text the model reads."""
        result = self.call(name, **arguments)
        assert result.is_error, f"{name} should have failed, got {result.structured_content}"
        return text(result)


def text(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


@contextlib.contextmanager
def mcp_client(env: dict[str, str]):
    """Start the server subprocess with ``env`` and yield a connected ``McpClient``."""
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(_connect(env)) as session:
            yield McpClient(portal, session)


def dump(data: Any) -> str:
    return json.dumps(data, indent=1, default=str)
