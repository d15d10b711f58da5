"""Configuration of the stream worker process (DOSSIER_* environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from common.settings import PROJECT_ROOT, StackSettings
from stream_apps.retirement import MIN_AFTER_S

# Hải Phòng's per-agency thresholds (docs/alerts.md, "Measured").
DEFAULT_THRESHOLDS_FILE = Path(__file__).parent / "data" / "alert-thresholds.json"


class WorkerSettings(StackSettings):
    """Everything one worker process needs; tests pass values in."""

    model_config = SettingsConfigDict(env_prefix="DOSSIER_", extra="ignore")

    secret_files: ClassVar[dict[str, str]] = StackSettings.secret_files | {
        "signing_master_key": "signing_master_key_file"
    }

    app_id: str = Field(
        "dossier-stream", description="Faust app id: consumer group and table prefix"
    )
    web_host: str = Field("127.0.0.1", description="address of the health and metrics endpoint")
    web_port: int = Field(6066, description="port of the health and metrics endpoint")
    flush_interval_s: float = Field(0.5, gt=0, description="seconds between Redis flushes")
    data_dir: Path = Field(
        PROJECT_ROOT / ".local" / "worker", description="Faust's working directory"
    )
    clock: Literal["live", "event"] = Field(
        "live",
        description="live: figures as of the wall clock; event: as of the latest event time "
        "(replaying history gives the figures the live run gave)",
    )
    full_publish_interval_s: float = Field(
        30.0, gt=0, description="seconds between republishing every partial figure"
    )
    series_interval_s: float = Field(5.0, gt=0, description="seconds between time-series updates")
    online_target: float = Field(
        0.80, ge=0, le=1, description="online share every city department should reach"
    )
    target_window: Literal["1h", "24h", "7d", "30d", "mtd", "qtd", "ytd"] = Field(
        "qtd", description="window of the online-ratio rankings and the below-target set"
    )
    stage_processes: int = Field(
        1,
        ge=1,
        le=64,
        description="dossier stage processes of this worker, each taking a share of the "
        "input partitions (the stage is CPU-bound: one per core helps replays and catch-ups)",
    )
    batch_max: int = Field(5000, ge=1, description="most input messages applied per batch")
    session_timeout_s: float = Field(10.0, gt=0, description="consumer group session timeout")
    future_tolerance_s: float = Field(
        300.0,
        ge=0,
        description="events dated more than this far ahead of the wall clock are dead-lettered",
    )
    gap_timeout_s: float = Field(
        3600.0,
        gt=0,
        description="a sequence gap open this long is released (wall clock; in event mode, "
        "the partition's event time)",
    )
    retire_after_days: float = Field(
        40.0,
        ge=0,
        description="a dossier resolved or closed (returned, refused, withdrawn, stopped) whose "
        "last event is this many days behind its partition's event clock leaves memory and "
        "the changelog, its contribution kept; at least 34; 0: never",
    )
    retry_max_s: float = Field(
        5.0, gt=0, description="longest wait between retries while Kafka or Redis is down"
    )
    redis_timeout_s: float = Field(
        2.0, gt=0, description="Redis connect and read timeout of the worker"
    )
    second_supplement_late: bool = Field(
        True, description="a second supplement request makes the dossier late (766 method)"
    )
    alerts: bool = Field(True, description="judge the alert rules and publish alerts")
    alerts_topic: str = Field("dossier.alerts.v1", description="topic of alert events")
    alerts_thresholds_file: Path | None = Field(
        DEFAULT_THRESHOLDS_FILE,
        description="JSON file of alert thresholds: defaults and per-agency overrides "
        "(docs/alerts.md); the default raises the near-due line of Hải Phòng's largest "
        "departments; empty: the built-in defaults only",
    )
    alerts_log_maxlen: int = Field(
        10_000, ge=100, description="about how many alert events the Redis log stream keeps"
    )
    alert_webhooks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="URLs each alert event is POSTed to (Alertmanager webhook body); "
        "comma-separated",
    )
    alerts_undelivered_topic: str = Field(
        "dossier.alerts.undelivered.v1",
        description="topic of alert deliveries that failed after every retry, with the reason",
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="timeout of one webhook request")
    webhook_retries: int = Field(
        3, ge=0, description="retries of a webhook delivery after the first attempt"
    )
    signing_master_key: SecretStr | None = Field(
        None,
        description="master key of the event signatures (schemas/signing.py); when set, an "
        "event not signed by the gateway or by the agency it names is dead-lettered as "
        "unauthenticated",
    )
    signing_master_key_file: Path | None = Field(
        None, description="file holding the master key of the event signatures"
    )

    @property
    def changelog_topic(self) -> str:
        """The compacted topic of the dossier records (one partition per input partition)."""
        return f"{self.app_id}-dossier-state"

    @property
    def partials_topic(self) -> str:
        """The topic the dossier stage publishes its rounds of partial figures to."""
        return f"{self.app_id}-partials"

    @field_validator("retire_after_days")
    @classmethod
    def _retire_late_enough(cls, value: float) -> float:
        if 0 < value < MIN_AFTER_S / 86400:
            raise ValueError(
                f"must be 0 (never) or at least {MIN_AFTER_S // 86400} days: the hour "
                "buckets of the figures reach 32 days back"
            )
        return value

    @field_validator("alerts_thresholds_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("alert_webhooks", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return [u.strip() for u in text.split(",") if u.strip()]
        return value
