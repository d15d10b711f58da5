"""Agency API tokens: issued once, stored only as SHA-256 hashes, checked in constant time.

A token reads `dsg_<id>_<secret>`: `id` (8 hex digits) names the entry in the tokens file,
`secret` is 32 random bytes (URL-safe base64). The file keeps the SHA-256 of the whole
token, never the token: a leaked file lets nobody in. Decision: SHA-256 without a salt or
key stretching is enough for a 256-bit random secret (nothing to guess, nothing to
precompute); it would not be for a password. The id lets the check find its entry without
comparing against every hash; the comparison itself is `hmac.compare_digest`, and an
unknown id is compared against a dummy hash so that both take about the same time.
No I/O here: reading and writing the file is `gateway.token_file`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PREFIX = "dsg_"
ID_HEX_DIGITS = 8
SECRET_BYTES = 32
_TOKEN = re.compile(r"^dsg_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_DUMMY_HASH = hashlib.sha256(b"dossier-stream gateway: no such token").hexdigest()


class TokenEntry(BaseModel):
    """One agency credential as the tokens file keeps it (the hash, never the token)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[0-9a-f]{8}$", description="token id, the part after dsg_")
    agency: str = Field(min_length=1, max_length=32, description="agency code it publishes for")
    label: str = Field("", max_length=200, description="who holds it, for the administrator")
    created_at: AwareDatetime = Field(description="when it was issued")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the token")

    def shown(self) -> dict[str, str]:
        """What `token list` prints: the hash cut to its first 8 digits."""
        return {
            "id": self.id,
            "agency": self.agency,
            "label": self.label,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "sha256": f"{self.sha256[:8]}…",
        }


class TokenBook(BaseModel):
    """Every token the gateway accepts (the content of the tokens file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    tokens: tuple[TokenEntry, ...] = ()

    def by_id(self, token_id: str) -> TokenEntry | None:
        return next((t for t in self.tokens if t.id == token_id), None)

    def add(self, entry: TokenEntry) -> TokenBook:
        if self.by_id(entry.id) is not None:
            raise ValueError(f"token id {entry.id} is already in use")
        return self.model_copy(update={"tokens": (*self.tokens, entry)})

    def revoke(self, token_id: str) -> TokenBook:
        """The book without the token `token_id`; KeyError when there is none."""
        if self.by_id(token_id) is None:
            raise KeyError(token_id)
        return self.model_copy(update={"tokens": tuple(t for t in self.tokens if t.id != token_id)})

    def verify(self, token: str) -> TokenEntry | None:
        """The entry of a presented token, or None: unknown, revoked or malformed."""
        match = _TOKEN.fullmatch(token)
        entry = self.by_id(match.group(1)) if match else None
        expected = entry.sha256 if entry is not None else _DUMMY_HASH
        if hmac.compare_digest(hash_token(token), expected) and entry is not None:
            return entry
        return None


def hash_token(token: str) -> str:
    """Hex SHA-256 of the token's UTF-8 bytes (what the tokens file keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(
    agency: str,
    label: str,
    now: datetime,
    *,
    taken: Iterable[str] = (),
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> tuple[str, TokenEntry]:
    """A new token for `agency` and its entry; the token is shown once and kept nowhere."""
    used = set(taken)
    while True:
        token_id = random_bytes(ID_HEX_DIGITS // 2).hex()
        if token_id not in used:
            break
    secret = base64.urlsafe_b64encode(random_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")
    token = f"{PREFIX}{token_id}_{secret}"
    entry = TokenEntry(
        id=token_id, agency=agency, label=label, created_at=now, sha256=hash_token(token)
    )
    return token, entry


def token_id_of(token: str) -> str | None:
    """The id part of a well-formed token (for logs: the id is not secret), else None."""
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None
