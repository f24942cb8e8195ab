"""Collector tuning from the environment (``TENANTGUARD_COLLECTOR_*``); per-connection overrides
live in ``Connection.config``. Nothing here is secret."""

from __future__ import annotations

import os
import socket
import uuid

from pydantic_settings import BaseSettings, SettingsConfigDict


class CollectorOptions(BaseSettings):
    """How hard and how often the collectors work."""

    model_config = SettingsConfigDict(env_prefix="TENANTGUARD_COLLECTOR_", env_file=None, extra="ignore")

    # A stream's lease lasts this long without renewal; a dead worker's streams move on after it.
    lease_seconds: float = 60.0
    # (connection, stream) jobs run at once inside one process.
    threads: int = 4
    # Attempts for 5xx/timeouts and for 429s left after the client's own retries.
    max_attempts: int = 8
    # Re-reads of a malformed page before it is quarantined and the run fails.
    malformed_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # A Retry-After longer than this is treated as a failure of the run (try again next interval).
    max_retry_after: float = 900.0
    # How far back a stream with no checkpoint starts (connections may override: backfill_days).
    backfill_days: float = 7.0
    # Re-read this much before the high-water mark on every pass (late data).
    overlap_minutes: float = 120.0
    # Longest time window read in one piece during a backfill.
    window_hours: float = 24.0
    # Records asked for per page (connections may override: page_size).
    page_size: int = 500
    # Snapshot streams read everything this often (connections may override: reconcile_hours);
    # in between they read only what changed (delta links, objects named by audit events).
    reconcile_hours: float = 24.0
    # Finished run records older than this are pruned by the scheduler.
    run_history_days: float = 30.0
    worker_id: str | None = None

    def worker(self) -> str:
        """`host:pid:nonce` — the host and pid let a restarted worker take over a dead one at once."""
        return self.worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
