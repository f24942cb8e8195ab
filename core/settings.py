"""Settings from the environment (prefix ``TENANTGUARD_``) with safe defaults for one machine."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.cwd() / ".tenantguard"


class Settings(BaseSettings):
    """Everything configurable. Secrets are never fields here: connections name them by reference."""

    model_config = SettingsConfigDict(env_prefix="TENANTGUARD_", env_file=None, extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    log_level: str = "INFO"
    connections_file: Path | None = None
    # Retention of raw events, in days (0 keeps everything).
    event_retention_days: int = 0
    # The analysis cycle (pipeline/): how often the safety sweep runs every stage (seconds), how
    # many detection batches (of `pipeline_batch_size` events) one job works through before it
    # yields to other jobs, and how far behind a stage may fall before /health says degraded.
    pipeline_sweep_seconds: float = 60.0
    pipeline_batch_size: int = 5000
    pipeline_max_batches: int = 4
    pipeline_lag_seconds: float = 600.0

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tenantguard.db'}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.models_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)
