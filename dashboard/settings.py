"""Settings of the dashboard server, read from DOSSIER_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import RedisSettings


class DashboardSettings(RedisSettings):
    """Where the dashboard listens and which Redis figures it reads (never Kafka).

    Redis credentials and TLS are RedisSettings' (`DOSSIER_REDIS_USERNAME`, ...): a
    read-only user is enough.
    """

    model_config = SettingsConfigDict(env_prefix="DOSSIER_", extra="ignore")

    redis_prefix: str = Field("ds:v1", description="prefix of the Redis keys")
    redis_timeout_s: float = Field(2.0, gt=0, description="Redis connect and read timeout")
    dashboard_host: str = Field("127.0.0.1", description="address the dashboard listens on")
    dashboard_port: int = Field(8066, ge=0, le=65535, description="port of the dashboard")
    online_target: float = Field(0.80, gt=0, le=1, description="online share target")
