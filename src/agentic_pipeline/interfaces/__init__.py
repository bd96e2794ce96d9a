"""Every skin in one home: ``cli/`` (click), ``mcp/`` (the MCP server), ``http`` (/health, /metrics).

Each skin parses its input, calls one operation with the ``App``, and renders the result; no
decision is made here. ``surfaces`` says which CLI command and which MCP tool expose the same
operation. Nothing is imported here, so ``agentic-pipeline --help`` stays fast.
"""
