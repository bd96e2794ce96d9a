"""Which CLI command and which MCP tool expose the same operation (checked by tests/mcp/test_interfaces_map.py).

Every CLI command (``cli.COMMANDS``) is either mapped to the MCP tools that offer the same operation,
or listed in ``CLI_ONLY`` with the reason an assistant should not have it. Every MCP tool is mapped
from a command or listed in ``MCP_ONLY``. Adding a command or a tool without updating this file
fails the meta-test, so the two surfaces cannot drift apart silently.
"""

from __future__ import annotations

#: CLI command -> the MCP tools that offer the same operation(s)
CLI_TO_MCP: dict[str, tuple[str, ...]] = {
    "status": ("get_pipeline_status",),
    "process": ("process_book",),
    "retry": ("retry_book",),
    "pending": ("list_pending_approvals",),
    "approve": ("approve_book",),
    "reject": ("reject_book",),
    "rollback": ("rollback_book",),
    "autonomy": ("get_autonomy_status",),
    "search": ("search_library",),
    "strategies": ("list_strategies",),
    "priority": ("set_pipeline_priority",),
    "batch-queue": ("batch_queue_folder",),
    "batch-approve": ("batch_approve",),
    "batch-reject": ("batch_reject",),
    "batch-retry": ("batch_retry",),
    "batch-priority": ("batch_set_priority",),
    "health": ("get_pipeline_health",),
    "stuck": ("get_stuck_pipelines", "recover_stuck_pipeline"),
    "audit": ("get_audit_log", "verify_audit_trail"),
    # list_rejected_books is `books --state rejected` summarised by cause
    "books": ("list_books", "list_rejected_books"),
    "show": ("show_book",),
    "edit": ("edit_book",),
}

#: CLI commands an assistant intentionally does not get, and why
CLI_ONLY: dict[str, str] = {
    "init": "creates or upgrades the database schema: an administrator's step before anything runs; "
            "tools report a database that is behind and say to run it",
    "worker": "a long-running process that drives books through the stages; it is started by a person or "
              "a service manager, not by a request",
    "serve": "starts the HTTP health endpoint, a long-running server of its own",
    "doctor": "checks the machine it runs on (its disk, model files, OCR engine, folders, clock): run it in a "
              "shell on each host; assistants read the pipeline's state with get_pipeline_health",
    "mcp": "this server itself: an assistant is already talking to it",
    "reembed": "a long batch job over the whole library after an administrator changes the embedding model; "
               "run it from a shell, where its progress is visible",
    "reprocess": "throws away a book's processed text and reads the file again (i15); not offered to assistants "
                 "until the MCP surface decides how to confirm it",
    "escape-hatch": "the emergency stop for automatic approvals belongs to the person operating the "
                    "pipeline; assistants read the policy with get_autonomy_status",
    "override": "overruling the validator is a person's decision with a reason, not an assistant's",
    "batch-cancel": "bulk cancelling the queue is an operator's clean-up after a mistaken batch-queue; assistants "
                    "reject books one by one or with batch_reject",
    "batch-rollback": "taking many books out of the library at once is the operator's undo; assistants use "
                      "rollback_book for one",
}

#: MCP tools with no CLI command of their own, and why
MCP_ONLY: dict[str, str] = {}

#: subcommands of CLI groups -> the MCP tools that offer the same operation
SUBCOMMAND_TO_MCP: dict[str, tuple[str, ...]] = {
    "autonomy status": ("get_autonomy_status",),
    "audit verify": ("verify_audit_trail",),
}

#: subcommands of CLI groups that assistants intentionally do not get, and why
_POLICY = "changing how much runs without review is the operator's decision, never an assistant's"
CLI_ONLY_SUBCOMMANDS: dict[str, str] = {
    "autonomy enable": _POLICY,
    "autonomy disable": _POLICY,
    "autonomy resume": _POLICY,
    "audit prune": "deleting old audit entries by the retention policy is an administrator's task",
}
