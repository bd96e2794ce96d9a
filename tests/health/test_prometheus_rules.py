"""deploy/prometheus-rules.yml: the same alerts as the health report, valid for Prometheus.

``promtool`` comes from Debian's ``prometheus`` package: installed here when running as root and
the package exists (``apt-cache``), else the promtool tests skip with the reason; under ``CI=true``
a package that is installable but not installed is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agentic_pipeline.health import alerts as alert_rules
from agentic_pipeline.health import metrics

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus-rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus-rules.test.yml"


def _apt_candidate(package: str) -> str | None:
    if shutil.which("apt-cache") is None:
        return None
    out = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            return None if value in ("", "(none)") else value
    return None


def ensure_debian_package(binary: str, package: str) -> str:
    """The path of ``binary``, installing Debian's ``package`` first when root; skips (or fails under CI) otherwise."""
    found = shutil.which(binary)
    if found:
        return found
    ci = os.environ.get("CI", "").lower() == "true"
    if os.geteuid() != 0:
        pytest.skip(f"{binary} is not installed and installing Debian's {package} package needs root")
    candidate = _apt_candidate(package)
    if candidate is None:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        candidate = _apt_candidate(package)
    if candidate is None:
        pytest.skip(f"Debian's {package} package is not available here (apt-cache policy {package}: no candidate)")
    result = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which(binary)
    if found is None:
        message = f"apt-get install {package} ({candidate}) did not provide {binary}: {result.stderr[-800:]}"
        (pytest.fail if ci else pytest.skip)(message)
    return found


@pytest.fixture(scope="module")
def promtool() -> str:
    return ensure_debian_package("promtool", "prometheus")


def test_promtool_accepts_the_rules(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_the_rules_fire_and_clear_as_their_unit_tests_say(promtool):
    result = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_metrics_the_rules_read(promtool, app):
    app.pipelines.create(source_path="/books/a.epub", actor="human:t")
    body, _ = metrics.render(app)
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    text = body.decode()
    for code, severity in alert_rules.CODES.items():
        value = "1.0" if code == "no_workers" else "0.0"
        assert f'agentic_pipeline_alerts{{code="{code}",severity="{severity}"}} {value}' in text


def test_every_alert_of_the_report_has_a_rule_with_its_code_and_severity():
    yaml = pytest.importorskip("yaml")
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    by_code = {r["labels"]["code"]: r["labels"]["severity"] for r in rules}
    for code, severity in alert_rules.CODES.items():
        assert by_code.get(code) == severity, code
    assert [r for r in rules if "{{" in r["annotations"]["summary"]] != []


def test_codes_match_the_rules_module():
    """CODES is the table the rules module documents: every rule returns only codes listed there."""
    assert {rule.__name__ for rule in alert_rules.RULES} == set(alert_rules.CODES)
