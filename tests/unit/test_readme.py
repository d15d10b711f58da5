"""The README documents every setting and the two quick-start commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.settings import StackSettings
from dashboard.settings import DashboardSettings
from dossier_stream.settings import LocalStackSettings
from gateway.settings import GatewaySettings
from stream_apps.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FIELDS = sorted(
    {
        name
        for cls in (
            StackSettings,
            WorkerSettings,
            LocalStackSettings,
            DashboardSettings,
            GatewaySettings,
        )
        for name in cls.model_fields
    }
)


@pytest.mark.parametrize("field", FIELDS)
def test_every_setting_is_in_the_readme(field: str) -> None:
    assert f"`DOSSIER_{field.upper()}`" in README


def test_quick_start_commands_are_make_targets_and_ci_runs_the_test_one() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "make demo" in README and "make test" in README
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
