"""Errors of the contract package."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError


class DossierStreamError(Exception):
    """Base of every error this project raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of an event: where, what was expected, what came."""

    field: str
    message: str
    value: str | None = None

    def __str__(self) -> str:
        shown = "" if self.value is None else f" (got {self.value})"
        return f"{self.field}: {self.message}{shown}"


class EventValidationError(DossierStreamError, ValueError):
    """An event does not satisfy the contract. `errors` names every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors) or "invalid event")

    @classmethod
    def from_pydantic(cls, exc: ValidationError) -> EventValidationError:
        out: list[FieldError] = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "event"
            msg = str(err.get("msg", "invalid"))
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            named = re.match(r"^\[([A-Za-z_.]+)\] (.*)$", msg, re.S)
            if named:  # a cross-field check that names the field it blames
                loc, msg = named.group(1), named.group(2)
            if err.get("type") == "extra_forbidden":
                msg = "unknown field: the contract does not allow it (no personal data)"
            value = err.get("input")
            shown = None
            # Never echo an unknown field's value: it may be an applicant's personal data.
            hidden = err.get("type") in ("missing", "extra_forbidden")
            if not named and not hidden and not isinstance(value, dict | list):
                shown = repr(value)[:80]
            out.append(FieldError(loc, msg, shown))
        return cls(out)
