"""The MCP server for AI assistants: ``server.create_server(settings)`` and its tool modules.

``common`` holds what every tool shares (argument types, the call wrapper, path roots, error
rendering); ``review`` (health, stuck books, approvals), ``book`` (one book, audit, library) and
``batch`` (batch tools) define the tools; ``server`` imports them statically and builds the server.
"""
