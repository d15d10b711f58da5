"""Event signatures: which agency (or the gateway) vouches for an event on the topic.

Kafka tells a consumer nothing about who produced a record, so a record carries its
signer and an HMAC-SHA256 of its value bytes in two headers:

- `ds-signer`: the agency code of the publishing agency, or `gateway`;
- `ds-signature`: hex HMAC-SHA256 of the record value, keyed with the signer's key.

Each signer's key is derived from one master key that only the worker holds:
`hex(HMAC-SHA256(key=master, msg="dossier-stream signer v1:" + signer))`, used as the
UTF-8 bytes of that hex text. The worker accepts an event signed by `gateway` (which
checked the agency's credential itself) or by the agency the event names; anything else
is `unauthenticated`. docs/security.md has the threat model.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

SIGNER_HEADER = "ds-signer"
SIGNATURE_HEADER = "ds-signature"
GATEWAY_SIGNER = "gateway"
_DERIVATION = b"dossier-stream signer v1:"

Header = tuple[str, bytes]


def signer_key(master_key: str, signer: str) -> str:
    """The key of one signer (an agency code or `gateway`), derived from the master key."""
    digest = hmac.new(master_key.encode(), _DERIVATION + signer.encode(), hashlib.sha256)
    return digest.hexdigest()


def signature(key: str, value: bytes) -> str:
    """Hex HMAC-SHA256 of a record value under a signer's key."""
    return hmac.new(key.encode(), value, hashlib.sha256).hexdigest()


def sign(signer: str, key: str, value: bytes) -> list[Header]:
    """The two headers that sign `value` as `signer`."""
    return [
        (SIGNER_HEADER, signer.encode()),
        (SIGNATURE_HEADER, signature(key, value).encode()),
    ]


def may_publish(signer: str, agency_code: str) -> bool:
    """Whether `signer` may vouch for an event of `agency_code`: the gateway, or itself."""
    return bool(signer) and signer in (GATEWAY_SIGNER, agency_code)


class Verifier:
    """Checks signatures against the master key (each signer's key derived once)."""

    def __init__(self, master_key: str) -> None:
        self._master_key = master_key
        self._keys: dict[str, str] = {}

    def signer(self, headers: Iterable[Header] | None, value: bytes) -> tuple[str | None, str]:
        """(the signer, "") when `value` carries a valid signature, else (None, why not)."""
        found: dict[str, bytes] = {}
        for name, raw in headers or ():
            if name in (SIGNER_HEADER, SIGNATURE_HEADER):
                found[name] = raw or b""
        if SIGNER_HEADER not in found or SIGNATURE_HEADER not in found:
            return None, f"unauthenticated: no {SIGNER_HEADER}/{SIGNATURE_HEADER} headers"
        try:
            signer = found[SIGNER_HEADER].decode()
            given = found[SIGNATURE_HEADER].decode()
        except UnicodeDecodeError:
            return None, "unauthenticated: the signature headers are not UTF-8"
        key = self._keys.get(signer)
        if key is None:
            key = signer_key(self._master_key, signer)
            if len(self._keys) < 10_000:  # signers are agencies: a few hundred at most
                self._keys[signer] = key
        if not hmac.compare_digest(signature(key, value), given):
            return None, f"unauthenticated: the signature of signer {signer[:40]!r} does not match"
        return signer, ""


def unauthenticated_reason(
    master_key: str, headers: Iterable[Header] | None, value: bytes, agency_code: str
) -> str | None:
    """Why an event for `agency_code` is not vouched for, or None when it is."""
    signer, why = Verifier(master_key).signer(headers, value)
    if signer is None:
        return why
    if not may_publish(signer, agency_code):
        return refused(signer, agency_code)
    return None


def refused(signer: str, agency_code: str) -> str:
    """The reason given for a valid signature by a signer who may not publish the event."""
    return (
        f"unauthenticated: signer {signer[:40]!r} may not publish for agency "
        f"{agency_code[:40]!r} (agency.code)"
    )


def signed_by(headers: Sequence[Header] | None) -> str | None:
    """The claimed signer of a record, if any (for logs; not a proof)."""
    for name, raw in headers or ():
        if name == SIGNER_HEADER:
            return (raw or b"").decode(errors="replace")
    return None
