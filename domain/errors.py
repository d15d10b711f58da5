"""Exceptions of the domain package, under the project's base exception."""

from __future__ import annotations

from schemas.errors import DossierStreamError


class DomainError(DossierStreamError):
    """Base of every error the domain package raises."""


class CalendarError(DomainError, ValueError):
    """Bad input to the working-day calendar: naive datetimes, bad overrides, dates out of range."""
