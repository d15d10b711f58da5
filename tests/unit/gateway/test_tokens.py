"""Tokens: the file keeps SHA-256(token) only; a token is accepted iff its hash matches."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from itertools import count

import pytest

from gateway.tokens import TokenBook, hash_token, issue, token_id_of

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def fixed_bytes(n: int, _seq: count = count()) -> bytes:  # noqa: B008 - a deterministic source
    return bytes([next(_seq) % 256]) * n


def test_the_hash_is_sha256_of_the_token_text() -> None:
    # The rule: hex SHA-256 of the UTF-8 bytes; the known digest of "abc".
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_an_issued_token_has_the_documented_shape_and_its_entry_only_the_hash() -> None:
    token, entry = issue("SO-XD", "one-stop shop", NOW, random_bytes=lambda n: b"\x01" * n)
    # id: 4 random bytes in hex; secret: 32 bytes, URL-safe base64 without padding (43 chars).
    assert token == "dsg_01010101_" + "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"
    assert entry.id == "01010101" and entry.agency == "SO-XD" and entry.created_at == NOW
    assert entry.sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in entry.model_dump_json()
    assert token_id_of(token) == "01010101"


def test_issue_never_reuses_a_taken_id() -> None:
    draws = iter([b"\xaa" * 4, b"\xbb" * 4, b"\x00" * 32])
    token, entry = issue("SO-XD", "", NOW, taken=["aaaaaaaa"], random_bytes=lambda n: next(draws))
    assert entry.id == "bbbbbbbb" and token.startswith("dsg_bbbbbbbb_")


@pytest.fixture
def book_and_tokens() -> tuple[TokenBook, str, str]:
    xd_token, xd = issue("SO-XD", "", NOW)
    yte_token, yte = issue("SO-YTE", "", NOW)
    return TokenBook().add(xd).add(yte), xd_token, yte_token


def test_verify_finds_the_agency_of_each_token(book_and_tokens) -> None:  # type: ignore[no-untyped-def]
    book, xd_token, yte_token = book_and_tokens
    assert book.verify(xd_token).agency == "SO-XD"  # type: ignore[union-attr]
    assert book.verify(yte_token).agency == "SO-YTE"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character of the secret
        lambda t: t.upper(),
        lambda t: t + "x",
        lambda t: t[4:],  # without the prefix
        lambda t: "",
        lambda t: "dsg_00000000_" + t.split("_", 2)[2],  # the secret under another id
    ],
)
def test_verify_refuses_anything_but_the_exact_token(book_and_tokens, mangle) -> None:  # type: ignore[no-untyped-def]
    book, xd_token, _ = book_and_tokens
    assert book.verify(mangle(xd_token)) is None


def test_a_revoked_token_is_refused_and_the_others_still_pass(book_and_tokens) -> None:  # type: ignore[no-untyped-def]
    book, xd_token, yte_token = book_and_tokens
    xd_id = token_id_of(xd_token)
    assert xd_id is not None
    revoked = book.revoke(xd_id)
    assert revoked.verify(xd_token) is None
    assert revoked.verify(yte_token) is not None
    with pytest.raises(KeyError):
        revoked.revoke(xd_id)


def test_the_listing_cuts_the_hash_and_never_holds_the_token(book_and_tokens) -> None:  # type: ignore[no-untyped-def]
    book, xd_token, _ = book_and_tokens
    shown = book.tokens[0].shown()
    assert shown["sha256"] == book.tokens[0].sha256[:8] + "…"
    assert xd_token not in str(shown) and book.tokens[0].sha256 not in str(shown)


def test_the_book_round_trips_through_json(book_and_tokens) -> None:  # type: ignore[no-untyped-def]
    book, xd_token, _ = book_and_tokens
    again = TokenBook.model_validate_json(book.model_dump_json())
    assert again == book and again.verify(xd_token) is not None
