"""Settings of the gateway server, read from DOSSIER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from common.settings import PROJECT_ROOT, StackSettings


class GatewaySettings(StackSettings):
    """Where the gateway listens, its limits, and (inherited) Kafka, credentials and signer.

    Kafka's address, SASL/TLS credentials and the events topic are `StackSettings`'; so
    are `DOSSIER_SIGNER` (`gateway`) and `DOSSIER_SIGNING_KEY[_FILE]`, which sign every
    record the gateway writes.
    """

    gateway_host: str = Field("127.0.0.1", description="address the gateway listens on")
    gateway_port: int = Field(8077, ge=0, le=65535, description="port of the gateway")
    gateway_tokens_file: Path = Field(
        PROJECT_ROOT / ".local" / "gateway" / "tokens.json",
        description="JSON file of the agencies' API tokens (their SHA-256 hashes)",
    )
    gateway_max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="largest request body, in bytes (413 beyond)"
    )
    gateway_max_events: int = Field(
        1000, ge=1, description="most events in one request (413 beyond)"
    )
    gateway_rate_per_s: float = Field(
        500.0, gt=0, description="events per second each agency may send, on average"
    )
    gateway_burst: int = Field(
        2000,
        ge=1,
        description="events an agency may send at once above its rate (at least "
        "DOSSIER_GATEWAY_MAX_EVENTS)",
    )
    gateway_ack_timeout_s: float = Field(
        10.0,
        gt=0,
        description="seconds the broker has to acknowledge a request's events (503 beyond)",
    )
    gateway_tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain) to serve HTTPS; with the key file"
    )
    gateway_tls_key_file: Path | None = Field(None, description="PEM private key for HTTPS")

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        if self.gateway_burst < self.gateway_max_events:
            raise ValueError(
                "DOSSIER_GATEWAY_BURST must be at least DOSSIER_GATEWAY_MAX_EVENTS, or the "
                "largest request could never pass"
            )
        if (self.gateway_tls_cert_file is None) != (self.gateway_tls_key_file is None):
            raise ValueError(
                "DOSSIER_GATEWAY_TLS_CERT_FILE and DOSSIER_GATEWAY_TLS_KEY_FILE go together"
            )
        return self
