"""The tokens file: read it (again when it changes), and write it atomically, owner-only."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from gateway.errors import TokenFileError
from gateway.tokens import TokenBook


def load(path: Path) -> TokenBook:
    """The book in `path`; an empty book when the file does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return TokenBook()
    except OSError as exc:
        raise TokenFileError(f"cannot read the tokens file {path}: {exc.strerror}") from None
    try:
        return TokenBook.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "file"
        # The message only: never echo the file's values.
        raise TokenFileError(
            f"the tokens file {path} is malformed at {where}: {first.get('msg')}"
        ) from None


def save(path: Path, book: TokenBook) -> None:
    """Replace `path` with `book` in one rename; the file is readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(book.model_dump_json(indent=2).encode("utf-8") + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise TokenFileError(f"cannot write the tokens file {path}: {exc.strerror}") from None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the tokens file's lock (a `.lock` file beside it) while changing it, so that two
    `token add` at once do not lose one of the tokens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f"{path.name}.lock")
    with open(lock, "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class TokenFile:
    """The tokens the server accepts: the file's book, read again whenever the file changes,
    so `token add` and `token revoke` take effect without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._book = TokenBook()
        self.book()

    def book(self) -> TokenBook:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._book = load(self.path)
            self._stamp = stamp
        return self._book
