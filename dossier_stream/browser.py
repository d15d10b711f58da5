"""Debian's headless Chromium for the dashboard's browser test, installed with apt-get when missing.

The browser test drives `/usr/bin/chromium` (Playwright's `executable_path`); no browser
is downloaded by a test tool. `python -m dossier_stream.browser` installs it and prints
its path.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

from dossier_stream.localstack import LocalStackError, _run_logged
from dossier_stream.settings import LocalStackSettings

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
PACKAGES = ("chromium", "chromium-driver")


def find_chromium() -> str | None:
    return shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)


def ensure_chromium(logs_dir: Path | None = None) -> str:
    """The path of Debian's chromium, installing `chromium` and `chromium-driver` with
    apt-get (as root) when it is missing; LocalStackError when that cannot be done."""
    found = find_chromium()
    if found:
        return found
    hint = "install it (Debian/Ubuntu: `sudo apt-get install chromium chromium-driver`)"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise LocalStackError(
            f"chromium was not found and cannot be installed automatically (needs apt-get and "
            f"root); {hint}"
        )
    logs = logs_dir or LocalStackSettings().stack_dir / "logs"
    install_log = logs / "chromium-install.log"
    log.info("chromium not found; installing Debian's chromium (log: %s)", install_log)
    began = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run_logged(["apt-get", "update"], install_log, what="apt-get update", env=env)
    _run_logged(
        ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
        install_log,
        what="apt-get install chromium",
        env=env,
    )
    found = find_chromium()
    if not found:
        raise LocalStackError(f"chromium is still missing after apt-get; see {install_log}")
    log.info("installed %s in %.1f s", found, time.monotonic() - began)
    return found


if __name__ == "__main__":
    try:
        print(ensure_chromium())
    except LocalStackError as exc:
        print(f"dossier-stream: error: {exc}", file=sys.stderr)
        sys.exit(1)
