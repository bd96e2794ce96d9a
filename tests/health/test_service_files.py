"""deploy/systemd: the units are valid for systemd (``systemd-analyze verify``), hardened (``systemd-analyze
security``), and their stop timeout matches the worker's graceful stop (the longest stage limit + 30 s)."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentic_pipeline import config

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
WORKER, SERVE = "agentic-pipeline-worker@.service", "agentic-pipeline-serve.service"
INSTALLED = "/opt/agentic-pipeline/bin/agentic-pipeline"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections as {section: {key: [values]}} (keys repeat in systemd units)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(value)
    return out


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_worker_stop_timeout_covers_the_longest_stage_and_the_release():
    service = unit(WORKER)["Service"]
    assert seconds(service["TimeoutStopSec"][0]) == max(config.DEFAULT_STAGE_SECONDS.values()) + 30
    assert service["KillSignal"] == ["SIGTERM"] and service["Restart"] == ["on-failure"]
    assert service["ExecStart"][0].split()[:2] == [INSTALLED, "worker"]


def test_both_units_are_hardened_and_restart():
    for name in (WORKER, SERVE):
        service = unit(name)["Service"]
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                           ("RestrictSUIDSGID", "yes"), ("CapabilityBoundingSet", ""), ("Restart", "on-failure")):
            assert service.get(key) == [value], (name, key)
        assert service["User"] == ["agentic-pipeline"] and "StateDirectory" in service


@pytest.fixture(scope="module")
def analyze(tmp_path_factory) -> tuple[str, Path]:
    """systemd-analyze and a copy of the units whose ExecStart is this checkout's real executable."""
    program = shutil.which("systemd-analyze")
    if program is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    where = tmp_path_factory.mktemp("units")
    exe = str(Path(sys.executable).with_name("agentic-pipeline"))
    assert os.access(exe, os.X_OK), exe
    for name in (WORKER, SERVE):
        (where / name).write_text((UNITS / name).read_text().replace(INSTALLED, exe))
    return program, where


def test_systemd_analyze_verify_accepts_both_units(analyze):
    program, where = analyze
    result = subprocess.run([program, "verify", "agentic-pipeline-worker@1.service", SERVE], cwd=where,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    noise = [line for line in result.stderr.splitlines() if where.name in line or "Unknown" in line
             or "ignoring" in line.lower()]
    assert noise == [], result.stderr


def test_systemd_analyze_rates_both_units_well_hardened(analyze):
    program, where = analyze
    for name in ("agentic-pipeline-worker@1.service", SERVE):
        result = subprocess.run([program, "security", "--offline=yes", "--no-pager", name], cwd=where,
                                capture_output=True, text=True)
        level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
        assert level, result.stdout + result.stderr
        assert float(level.group(1)) <= 2.0, (name, level.group(0))
