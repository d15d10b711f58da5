"""Settings of the local, Docker-free services; the shared ones live in `common.settings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings import PROJECT_ROOT


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
