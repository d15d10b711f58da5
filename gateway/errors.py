"""Errors of the gateway package."""

from __future__ import annotations

from schemas.errors import DossierStreamError


class GatewayError(DossierStreamError):
    """Base of the gateway's errors."""


class TokenFileError(GatewayError):
    """The tokens file cannot be read, is malformed, or cannot be written."""


class BodyError(GatewayError):
    """A request body that is no event, no JSON array of events and no JSON Lines."""


class TooLargeError(GatewayError):
    """A request body beyond the size limit or the event-count limit."""
