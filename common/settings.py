"""Settings shared by every process, read from DOSSIER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class StackSettings(BaseSettings):
    """Where the services are and what the topics are called.

    Defaults match the local services that `dossier-stream services up` starts.
    """

    model_config = SettingsConfigDict(env_prefix="DOSSIER_", extra="ignore")

    kafka_bootstrap: str = Field(
        "127.0.0.1:29092", description="Kafka bootstrap servers, host:port[,host:port]"
    )
    redis_url: str = Field("redis://127.0.0.1:26379/0", description="Redis URL")
    events_topic: str = Field("dossier.events.v1", description="topic of dossier events")
    dead_letter_topic: str = Field(
        "dossier.events.dlq.v1", description="dead-letter topic for events the worker rejects"
    )
    redis_prefix: str = Field("ds:v1", description="prefix of every Redis key the worker writes")
    partitions: int = Field(4, ge=1, description="partitions of the events topic when created")
    kafka_admin_timeout_s: float = Field(
        30.0,
        gt=0,
        description="seconds the commands wait for the broker when they create or delete "
        "topics (the worker at its start, the demo)",
    )
