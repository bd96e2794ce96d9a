"""The fault-injection port: make a stage fail, hang or die on purpose, from the outside.

Tests and drills set ``AGENTIC_PIPELINE_FAULTS`` (JSON) for worker processes, or pass a
``FaultPlan`` to ``process.drive``. Each rule is keyed by stage name:

    {"processing": {"kind": "transient", "times": 1}}   fail while retry_count < times
    {"classifying": {"kind": "permanent"}}               a BookError: rejected, never retried
    {"embedding": {"kind": "sleep", "seconds": 5}}       hang (to hit a time limit or a signal)
    {"hashing": {"kind": "exit"}}                         the stage process dies without a word

Stateless on purpose: "times" is compared with the pipeline's own ``retry_count``, so the
plan means the same thing in every worker process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Mapping

from agentic_pipeline import errors

ENV = "AGENTIC_PIPELINE_FAULTS"


class InjectedFault(errors.TransientError):
    """A transient failure injected by the fault plan."""


class InjectedBookError(errors.CorruptFile):
    """corrupt or unreadable file (injected by the fault plan)"""


@dataclasses.dataclass(frozen=True)
class FaultPlan:
    rules: Mapping[str, Mapping[str, Any]]

    def before(self, stage: str, pipeline) -> None:
        """Apply the rule for ``stage`` (if any) to ``pipeline`` just before the stage runs."""
        rule = self.rules.get(stage)
        if not rule:
            return
        kind = rule.get("kind", "transient")
        if kind == "transient" and (pipeline.row.get("retry_count") or 0) < int(rule.get("times", 1)):
            raise InjectedFault(f"injected transient failure in {stage}")
        if kind == "permanent":
            raise InjectedBookError(f"corrupt or unreadable file (injected permanent failure in {stage})")
        if kind == "sleep":
            time.sleep(float(rule.get("seconds", 1.0)))
        if kind == "exit":
            os._exit(3)


def parse(raw: str | None) -> FaultPlan | None:
    """The plan in ``Settings.faults`` (``AGENTIC_PIPELINE_FAULTS``): a JSON object by stage; None when empty."""
    if not raw:
        return None
    try:
        return FaultPlan(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise errors.ConfigError(f"invalid {ENV}: {exc}") from exc
