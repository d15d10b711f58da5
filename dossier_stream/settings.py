"""Settings of the local, Docker-free services; the shared ones live in `common.settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    # -- the secured stack (`services up --secure`), next to the plain one
    secure_kafka_port: int = Field(
        29192, description="client port (SASL_SSL) of the secured local broker"
    )
    secure_kafka_controller_port: int = Field(
        29193, description="KRaft controller port of the secured local broker"
    )
    secure_redis_port: int = Field(26390, description="TLS port of the secured local Redis")
    secure_agencies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["SO-XD", "SO-TC"],
        description="agency codes that get a Kafka principal of their own (agency.<CODE>) in "
        "the secured stack, to publish directly; comma-separated",
    )
    # -- the three-broker cluster (`services up --brokers 3`), next to the plain stack
    cluster_kafka_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [29292, 29294, 29296],
        description="client ports of the local three-broker cluster's nodes 1, 2 and 3; "
        "comma-separated",
    )
    cluster_controller_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [29293, 29295, 29297],
        description="KRaft controller ports of the local cluster's nodes 1, 2 and 3; "
        "comma-separated",
    )
    cluster_redis_port: int = Field(26391, description="port of the local cluster's own Redis")
    cluster_kafka_heap: str = Field(
        "-Xms128m -Xmx512m", description="JVM heap options of each broker of the local cluster"
    )
    start_timeout_s: float = Field(120.0, description="seconds to wait for a service to be ready")
    stop_timeout_s: float = Field(
        20.0, description="seconds to wait after SIGTERM before a service is killed"
    )

    @field_validator("secure_agencies", mode="before")
    @classmethod
    def _split_codes(cls, value: object) -> object:
        if isinstance(value, str):
            return [code.strip() for code in value.split(",") if code.strip()]
        return value

    @field_validator("cluster_kafka_ports", "cluster_controller_ports", mode="before")
    @classmethod
    def _split_ports(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(port) for port in value.split(",") if port.strip()]
        return value

    @field_validator("cluster_kafka_ports", "cluster_controller_ports")
    @classmethod
    def _three_ports(cls, value: list[int]) -> list[int]:
        if len(value) != 3:
            raise ValueError(f"the local cluster has three nodes: give three ports, not {value}")
        return value
