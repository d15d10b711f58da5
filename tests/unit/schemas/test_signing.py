"""Event signatures: keys derived per signer, HMAC over the value, who may vouch for whom."""

from __future__ import annotations

import pytest

from schemas.signing import (
    GATEWAY_SIGNER,
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    Verifier,
    may_publish,
    sign,
    signature,
    signer_key,
    unauthenticated_reason,
)

MASTER = "master-key-for-tests"
# Computed with OpenSSL, not with this code:
#   printf 'dossier-stream signer v1:SO-XD' | openssl dgst -sha256 -hmac master-key-for-tests
SO_XD_KEY = "42c311c31821b8a092f9f6db3371f559316ae6f9556ec89f46005713af102447"
#   printf '{"a":1}' | openssl dgst -sha256 -hmac <SO_XD_KEY>
SO_XD_SIGNATURE = "0222cc62eb772dc02d178d5e270ce8aeef739bba806da964f4c4ddcc9e5bab27"


def test_a_signer_key_and_signature_follow_the_documented_hmac() -> None:
    assert signer_key(MASTER, "SO-XD") == SO_XD_KEY
    assert signature(SO_XD_KEY, b'{"a":1}') == SO_XD_SIGNATURE
    assert sign("SO-XD", SO_XD_KEY, b'{"a":1}') == [
        (SIGNER_HEADER, b"SO-XD"),
        (SIGNATURE_HEADER, SO_XD_SIGNATURE.encode()),
    ]


def test_keys_differ_per_signer_and_per_master() -> None:
    keys = {signer_key(MASTER, s) for s in ("SO-XD", "SO-TC", GATEWAY_SIGNER)}
    assert len(keys) == 3
    assert signer_key("another master", "SO-XD") != SO_XD_KEY


@pytest.mark.parametrize(
    ("signer", "agency", "allowed"),
    [
        ("SO-XD", "SO-XD", True),
        (GATEWAY_SIGNER, "SO-XD", True),
        ("SO-TC", "SO-XD", False),
        ("so-xd", "SO-XD", False),
        ("", "", False),
    ],
)
def test_only_the_gateway_or_the_agency_itself_may_vouch(
    signer: str, agency: str, allowed: bool
) -> None:
    assert may_publish(signer, agency) is allowed


def test_the_verifier_names_the_signer_of_a_valid_signature() -> None:
    value = b'{"a":1}'
    headers = [("content-type", b"application/json"), *sign("SO-XD", SO_XD_KEY, value)]
    assert Verifier(MASTER).signer(headers, value) == ("SO-XD", "")
    assert unauthenticated_reason(MASTER, headers, value, "SO-XD") is None


@pytest.mark.parametrize(
    ("headers", "value", "why"),
    [
        (None, b'{"a":1}', "no ds-signer/ds-signature headers"),
        ([(SIGNER_HEADER, b"SO-XD")], b'{"a":1}', "no ds-signer/ds-signature headers"),
        (sign("SO-XD", SO_XD_KEY, b'{"a":1}'), b'{"a":2}', "does not match"),  # tampered
        (sign("SO-XD", "a guessed key", b'{"a":1}'), b'{"a":1}', "does not match"),
        (sign("SO-TC", SO_XD_KEY, b'{"a":1}'), b'{"a":1}', "does not match"),  # stolen key
        ([(SIGNER_HEADER, b"\xff"), (SIGNATURE_HEADER, b"00")], b"{}", "not UTF-8"),
    ],
)
def test_the_verifier_refuses_what_the_master_key_does_not_vouch_for(
    headers: list[tuple[str, bytes]] | None, value: bytes, why: str
) -> None:
    signer, reason = Verifier(MASTER).signer(headers, value)
    assert signer is None
    assert reason.startswith("unauthenticated: ")
    assert why in reason


def test_a_valid_signature_for_another_agency_is_refused_with_both_names() -> None:
    value = b'{"a":1}'
    reason = unauthenticated_reason(MASTER, sign("SO-XD", SO_XD_KEY, value), value, "SO-TC")
    assert reason is not None
    assert reason.startswith("unauthenticated: ")
    assert "'SO-XD'" in reason and "'SO-TC'" in reason
