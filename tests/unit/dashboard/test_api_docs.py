"""docs/dashboard.md names every route of the JSON API and every setting of the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from dashboard.app import create_app
from dashboard.settings import DashboardSettings

DOC = (Path(__file__).resolve().parents[3] / "docs" / "dashboard.md").read_text(encoding="utf-8")
# Built without I/O: the app connects to Redis only when a request comes.
APP = create_app(DashboardSettings(redis_url="redis://127.0.0.1:1/0"))
ROUTES = sorted(
    r.path for r in APP.routes if isinstance(r, APIRoute) and r.path.startswith("/api/")
)


@pytest.mark.parametrize("path", ROUTES)
def test_every_api_route_is_in_the_docs_table(path: str) -> None:
    # `{metric}/{level}` routes are documented with their values: `{online_ratio\|overdue_now}`.
    pattern = (
        re.escape(path).replace(r"\{metric\}", r"\{[^}]*\}").replace(r"\{level\}", r"\{[^}]*\}")
    )
    assert re.search(rf"`GET {pattern}(\?[^`]*)?`", DOC), path


def test_the_docs_name_no_route_the_app_lacks() -> None:
    documented = set(re.findall(r"`GET (/api/v1/[a-z-]+)", DOC))
    served = {"/".join(p.split("/")[:4]) for p in ROUTES}
    assert documented == served


@pytest.mark.parametrize("field", list(DashboardSettings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"`DOSSIER_{field.upper()}`" in DOC or f"`DOSSIER_{field.upper()}`," in DOC
