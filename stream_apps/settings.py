"""Configuration of the stream worker process (DOSSIER_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dossier_stream.settings import PROJECT_ROOT, StackSettings


class WorkerSettings(StackSettings):
    """Everything one worker process needs; tests pass values in."""

    model_config = SettingsConfigDict(env_prefix="DOSSIER_", extra="ignore")

    app_id: str = Field("dossier-stream", description="Faust app id: consumer group and table prefix")
    web_host: str = Field("127.0.0.1", description="address of the health and metrics endpoint")
    web_port: int = Field(6066, description="port of the health and metrics endpoint")
    flush_interval_s: float = Field(0.5, gt=0, description="seconds between Redis flushes")
    data_dir: Path = Field(
        PROJECT_ROOT / ".local" / "worker", description="Faust's working directory"
    )
    second_supplement_late: bool = Field(
        True, description="a second supplement request makes the dossier late (766 method)"
    )
