"""Debian's chromium for the browser test: found, or installed, or one line saying why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from dossier_stream import browser
from dossier_stream.localstack import LocalStackError


def test_a_chromium_on_the_path_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "find_chromium", lambda: "/opt/chromium")
    monkeypatch.setattr(browser, "_run_logged", lambda *a, **k: pytest.fail("no install"))
    assert browser.ensure_chromium() == "/opt/chromium"


def test_without_root_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)
    with pytest.raises(LocalStackError, match="apt-get install chromium chromium-driver"):
        browser.ensure_chromium()


def test_as_root_it_installs_both_packages_with_apt_get(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = iter([None, "/usr/bin/chromium"])
    commands: list[list[str]] = []
    monkeypatch.setattr(browser, "find_chromium", lambda: next(found))
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    monkeypatch.setattr(browser.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(browser, "_run_logged", lambda cmd, *a, **k: commands.append(cmd) or "")
    assert browser.ensure_chromium(tmp_path) == "/usr/bin/chromium"
    assert commands[0] == ["apt-get", "update"]
    assert commands[1][:2] == ["apt-get", "install"]
    assert {"chromium", "chromium-driver"} <= set(commands[1])


def test_still_missing_after_apt_get_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    monkeypatch.setattr(browser.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(browser, "_run_logged", lambda *a, **k: "")
    with pytest.raises(LocalStackError, match="still missing after apt-get"):
        browser.ensure_chromium(tmp_path)
