"""`dossier-stream gateway token …` as an administrator runs it, and `gateway --help`."""

from __future__ import annotations

import json
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.token_file import load
from gateway.tokens import hash_token
from tests.cli import error_line, run_cli


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"DOSSIER_GATEWAY_TOKENS_FILE": str(tmp_path / "gateway" / "tokens.json")}


def test_help_shows_examples_of_every_action() -> None:
    result = run_cli("gateway", "--help")
    assert result.returncode == 0
    for example in ("token add --agency SO-XD", "token list", "token revoke", "serve", "curl"):
        assert example in result.stdout
    assert "--agency" in run_cli("gateway", "token", "add", "--help").stdout


def test_add_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    result = run_cli("gateway", "token", "add", "--agency", "SO-XD", "--label", "một cửa", env=env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert re.fullmatch(r"dsg_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", token)
    path = tmp_path / "gateway" / "tokens.json"
    text = path.read_text(encoding="utf-8")
    secret = token.split("_", 2)[2]  # may itself hold "_" (URL-safe base64)
    assert token not in text and secret not in text
    (entry,) = load(path).tokens
    assert (entry.agency, entry.label, entry.sha256) == ("SO-XD", "một cửa", hash_token(token))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_unknown_agency_code_is_refused(tmp_path: Path) -> None:
    result = run_cli("gateway", "token", "add", "--agency", "SO-NOPE", env=env_for(tmp_path))
    assert result.returncode == 2
    assert "unknown agency code 'SO-NOPE'" in error_line(result)
    assert not (tmp_path / "gateway" / "tokens.json").exists()


def test_list_shows_ids_and_cut_hashes_never_tokens(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    token = run_cli("gateway", "token", "add", "--agency", "11311", env=env).stdout.strip()
    (entry,) = load(tmp_path / "gateway" / "tokens.json").tokens
    table = run_cli("gateway", "token", "list", env=env).stdout
    rows = json.loads(run_cli("gateway", "token", "list", "--json", env=env).stdout)
    assert entry.id in table and "11311" in table
    assert rows == [entry.shown()] and rows[0]["sha256"] == entry.sha256[:8] + "…"
    for shown in (table, json.dumps(rows)):
        assert token not in shown and entry.sha256 not in shown


def test_revoke_removes_the_token_and_an_unknown_id_fails(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    run_cli("gateway", "token", "add", "--agency", "SO-XD", env=env)
    (entry,) = load(tmp_path / "gateway" / "tokens.json").tokens
    assert run_cli("gateway", "token", "revoke", entry.id, env=env).returncode == 0
    assert load(tmp_path / "gateway" / "tokens.json").tokens == ()
    again = run_cli("gateway", "token", "revoke", entry.id, env=env)
    assert again.returncode == 1 and f"no token '{entry.id}'" in error_line(again)


def test_tokens_added_at_once_are_all_kept(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    agencies = ["SO-XD", "SO-YTE", "SO-TC", "SO-GDDT"]
    with ThreadPoolExecutor(len(agencies)) as pool:
        results = list(
            pool.map(lambda a: run_cli("gateway", "token", "add", "--agency", a, env=env), agencies)
        )
    assert all(r.returncode == 0 for r in results)
    book = load(tmp_path / "gateway" / "tokens.json")
    assert sorted(t.agency for t in book.tokens) == sorted(agencies)
    for result in results:
        assert book.verify(result.stdout.strip()) is not None
