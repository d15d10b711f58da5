"""Settings shared by every process, read from DOSSIER_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class RedisSettings(BaseSettings):
    """Where Redis is and how to authenticate to it: the settings of every Redis client.

    A secret may also come from a file (`DOSSIER_<NAME>_FILE`), as Docker and systemd
    credentials provide them: the file's content, without its trailing newline.
    """

    model_config = SettingsConfigDict(env_prefix="DOSSIER_", extra="ignore")

    # secret field -> the field naming a file that holds it
    secret_files: ClassVar[dict[str, str]] = {"redis_password": "redis_password_file"}

    redis_url: str = Field(
        "redis://127.0.0.1:26379/0", description="Redis URL (rediss:// for TLS); no password"
    )
    # -- Redis authentication
    redis_username: str | None = Field(None, description="Redis ACL user (default: `default`)")
    redis_password: SecretStr | None = Field(None, description="password of the Redis user")
    redis_password_file: Path | None = Field(
        None, description="file holding the password of the Redis user"
    )
    redis_ca_file: Path | None = Field(
        None, description="PEM file of the CA of Redis's certificate (with a rediss:// URL)"
    )

    @model_validator(mode="after")
    def _read_secret_files(self) -> Self:
        for secret, file_field in self.secret_files.items():
            path: Path | None = getattr(self, file_field)
            if path is None or getattr(self, secret) is not None:
                continue
            variable = f"DOSSIER_{file_field.upper()}"
            try:
                text = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"{variable}: cannot read {path}: {exc.strerror}") from None
            if not text:
                raise ValueError(f"{variable}: {path} is empty")
            setattr(self, secret, SecretStr(text))
        return self


class StackSettings(RedisSettings):
    """Where the services are, how to authenticate to them, and what the topics are called.

    Defaults match the local services that `dossier-stream services up` starts, which
    need no credentials; the secured stack (`services up --secure`, docs/security.md)
    writes the variables for each of its principals into env files.
    """

    model_config = SettingsConfigDict(env_prefix="DOSSIER_", extra="ignore")

    secret_files: ClassVar[dict[str, str]] = RedisSettings.secret_files | {
        "kafka_password": "kafka_password_file",
        "signing_key": "signing_key_file",
    }

    kafka_bootstrap: str = Field(
        "127.0.0.1:29092", description="Kafka bootstrap servers, host:port[,host:port]"
    )
    events_topic: str = Field("dossier.events.v1", description="topic of dossier events")
    dead_letter_topic: str = Field(
        "dossier.events.dlq.v1", description="dead-letter topic for events the worker rejects"
    )
    redis_prefix: str = Field("ds:v1", description="prefix of every Redis key the worker writes")
    partitions: int = Field(4, ge=1, description="partitions of the events topic when created")
    replication_factor: int = Field(
        1,
        ge=1,
        description="replicas of each topic the project creates (3 on the three-broker cluster)",
    )
    min_insync_replicas: int = Field(
        1,
        ge=1,
        description="`min.insync.replicas` of each topic the project creates: replicas that "
        "must have a write before acks=all producers get it acknowledged (2 on the cluster)",
    )
    kafka_admin_timeout_s: float = Field(
        30.0,
        gt=0,
        description="seconds the commands wait for the broker when they create or delete "
        "topics (the worker at its start, the demo)",
    )
    # -- Kafka authentication (docs/security.md)
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512", description="SASL mechanism when the protocol is SASL_*"
    )
    kafka_username: str | None = Field(None, description="SASL user (the Kafka principal)")
    kafka_password: SecretStr | None = Field(None, description="SASL password")
    kafka_password_file: Path | None = Field(None, description="file holding the SASL password")
    kafka_ca_file: Path | None = Field(
        None, description="PEM file of the CA that signed the brokers' certificates"
    )
    # -- event signatures (schemas/signing.py)
    signer: str | None = Field(
        None, description="who signs published events: an agency code, or `gateway`"
    )
    signing_key: SecretStr | None = Field(None, description="the signer's key")
    signing_key_file: Path | None = Field(None, description="file holding the signer's key")

    @property
    def signer_pair(self) -> tuple[str, str] | None:
        """(signer, key) when published records are to be signed (schemas/signing.py)."""
        if self.signer and self.signing_key is not None:
            return self.signer, self.signing_key.get_secret_value()
        return None
