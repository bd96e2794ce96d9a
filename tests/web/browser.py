"""Finding (or installing) Debian's Chromium for the browser tests; Playwright never downloads a browser.

``make test`` and the tests themselves install ``chromium`` and ``chromium-driver`` with apt when running as
root and the browser is missing (``apt-get update`` first when the install fails). Otherwise the browser
tests skip with the reason; under ``CI=true`` a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium", "chromium-driver")


def install() -> str | None:
    """Install the browser when root; returns why it is unavailable, or None when it is there."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and only root can install it (apt-get install -y {' '.join(PACKAGES)})"
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return f"apt-get could not install {' '.join(PACKAGES)}: {done.stderr.strip()[-300:]}"
    return None if CHROMIUM.exists() else f"{CHROMIUM} still missing after installing {' '.join(PACKAGES)}"


def require() -> None:
    """Skip (or fail under CI=true) when there is no browser to drive."""
    why = install()
    if why is None:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "playwright is not installed (pip install -e '.[test]')"
    if why is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot run under CI: {why}")
        pytest.skip(why)


if __name__ == "__main__":  # `make test` runs this first: install the browser when root, else say why not
    reason = install()
    print(f"browser tests: {reason}" if reason else f"browser tests: using {CHROMIUM}")
