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


class LocalStackSettings(BaseSettings):
    """The local, Docker-free Kafka and Redis (`dossier-stream services`)."""

    model_config = SettingsConfigDict(env_prefix="DOSSIER_", extra="ignore")

    stack_dir: Path = Field(
        PROJECT_ROOT / ".local", description="jars, data, logs and PID files of local services"
    )
    kafka_version: str = Field("4.1.2", description="Apache Kafka version fetched from Maven")
    kafka_port: int = Field(29092, description="local broker client port")
    kafka_controller_port: int = Field(29093, description="local KRaft controller port")
    kafka_heap: str = Field("-Xms256m -Xmx1g", description="JVM heap options of the broker")
    kafka_jars_dir: Path | None = Field(
        None, description="cache of downloaded Kafka jars (default: <stack_dir>/kafka)"
    )
    kafka_files_dir: Path = Field(
        PROJECT_ROOT / "services" / "kafka",
        description="pom.xml (which jars to fetch) and log4j2.yaml of the local broker",
    )
    redis_port: int = Field(26379, description="local Redis port")
    redis_server: str = Field("redis-server", description="redis-server executable to run")
    install_redis: bool = Field(
        True, description="install Debian's redis-server with apt-get when it is missing"
    )
    start_timeout_s: float = Field(120.0, description="seconds to wait for a service to be ready")
    stop_timeout_s: float = Field(
        20.0, description="seconds to wait after SIGTERM before a service is killed"
    )
