"""The ``mcp`` command: serve the MCP tools on stdio for an AI assistant."""

from __future__ import annotations

import click


@click.command("mcp")
@click.pass_obj
def mcp_cmd(obj) -> None:
    """Run the MCP server on stdio for AI assistants (Claude Desktop, Claude Code, ...).

    \b
    An MCP client starts this command itself; add it to the client's configuration:
      command: agentic-pipeline   args: ["mcp"]
      env: AGENTIC_PIPELINE_DB=<database>, AGENTIC_PIPELINE_MCP_ROOTS=<folders it may read>
    The actor recorded in the audit trail is mcp:<client name>. See docs/mcp.md.
    """
    import logging

    from agentic_pipeline import logs
    from agentic_pipeline.interfaces.mcp import server as mcp_server

    settings = obj.settings()
    log = logging.getLogger("agentic_pipeline.mcp")
    logs.start_line(log, "mcp", settings, transport="stdio",
                    roots=",".join(str(r) for r in settings.mcp_roots) or None)
    try:
        mcp_server.run_stdio(settings)
    finally:
        logs.event(log, "mcp_stop", "mcp server stopped")
