"""Prometheus metrics for `/metrics`: request counts and latency per route, plus a few product gauges.

Each application gets its own registry, so several apps (tests, benchmarks) never collide.
Product gauges (open findings, incidents by status) are read from the database at scrape time
and cached briefly, so a fast scraper cannot turn into a database load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.db import Database
from core.models import Finding, Incident

_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """The metric objects one application updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tenantguard_http_requests_total",
            "HTTP requests by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "tenantguard_http_request_duration_seconds",
            "Time to the last response byte, by method and route template.",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "tenantguard_http_requests_in_flight", "Requests being served now.", registry=self.registry
        )
        self.auth_failures = Counter(
            "tenantguard_auth_failures_total",
            "Refused authentications by reason.",
            ("reason",),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "tenantguard_rate_limited_total",
            "Requests refused by the per-caller rate limit.",
            registry=self.registry,
        )
        self.audit_records = Counter(
            "tenantguard_api_audit_records_total",
            "Audit records written by API mutations.",
            ("action",),
            registry=self.registry,
        )

    def watch_database(self, db: Database, ttl_seconds: float = 30.0) -> None:
        self.registry.register(ProductGauges(db, ttl_seconds))

    def watch_pipeline(self, db: Database, settings: Any, cycle: Any, ttl_seconds: float = 5.0) -> None:
        """Per-stream and per-stage series (last success, lag, backlog, totals, errors by kind)."""
        self.registry.register(PipelineGauges(db, cycle, ttl_seconds))


class ProductGauges(Collector):
    """Open findings by severity and incidents by status, cached for `ttl` seconds."""

    def __init__(self, db: Database, ttl: float) -> None:
        self.db = db
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = 0.0
        self._cached: tuple[list[tuple[str, int]], list[tuple[str, int]]] = ([], [])

    def _read(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                with self.db.session(readonly=True) as session:
                    findings = session.exec(
                        select(Finding.severity, func.count())
                        .where(Finding.status == "open")
                        .group_by(Finding.severity)
                    ).all()
                    incidents = session.exec(
                        select(Incident.status, func.count()).group_by(Incident.status)
                    ).all()
                self._cached = (
                    [(str(name), int(count)) for name, count in findings],
                    [(str(name), int(count)) for name, count in incidents],
                )
                self._at = time.monotonic()
            return self._cached

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        findings, incidents = self._read()
        open_findings = GaugeMetricFamily(
            "tenantguard_open_findings", "Open findings by severity.", labels=["severity"]
        )
        for severity, count in findings:
            open_findings.add_metric([severity], count)
        yield open_findings
        by_status = GaugeMetricFamily("tenantguard_incidents", "Incidents by status.", labels=["status"])
        for status, count in incidents:
            by_status.add_metric([status], count)
        yield by_status


class PipelineGauges(Collector):
    """Streams and stages: read from the database (lag, backlog) and from the running cycle
    (`pipeline.embedded.EmbeddedScheduler`, when this process runs it: runs, totals, errors)."""

    def __init__(self, db: Database, cycle: Any, ttl: float) -> None:
        self.db = db
        self.cycle = cycle
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = 0.0
        self._lag: Any = None
        self._engine: Any = None
        self._engine_at = 0.0

    def lag(self) -> Any:
        from pipeline.health import read_lag

        with self._lock:
            if self._lag is None or time.monotonic() - self._at > self.ttl:
                self._lag = read_lag(self.db)
                self._at = time.monotonic()
            return self._lag

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[Any]:
        lag = self.lag()
        success = GaugeMetricFamily(
            "tenantguard_stream_last_success_timestamp_seconds",
            "When each stream last read to the end without error.",
            labels=["connection", "stream"],
        )
        healthy = GaugeMetricFamily(
            "tenantguard_stream_healthy",
            "1 when the stream's last run succeeded.",
            labels=["connection", "stream"],
        )
        for s in lag.streams:
            labels = [s.connection, s.stream]
            if s.last_success is not None:
                success.add_metric(labels, s.last_success.timestamp())
            healthy.add_metric(labels, 1.0 if s.health == "ok" else 0.0)
        yield success
        yield healthy
        backlog = GaugeMetricFamily(
            "tenantguard_stage_backlog", "Items waiting for a stage (events, findings).", labels=["stage"]
        )
        lag_seconds = GaugeMetricFamily(
            "tenantguard_stage_lag_seconds", "How long the oldest waiting item has waited.", labels=["stage"]
        )
        for stage in lag.stages:
            backlog.add_metric([stage.stage], stage.backlog)
            lag_seconds.add_metric([stage.stage], stage.oldest_seconds)
        yield backlog
        yield lag_seconds
        if self.cycle is None:
            yield from self._engine_series()
            return
        records = self.cycle.cycle.book.snapshot()
        last = GaugeMetricFamily(
            "tenantguard_stage_last_success_timestamp_seconds",
            "When each stage last ran without failing.",
            labels=["stage"],
        )
        runs = CounterMetricFamily("tenantguard_stage_runs", "Stage runs in this process.", labels=["stage"])
        busy = CounterMetricFamily(
            "tenantguard_stage_seconds", "Time spent running each stage in this process.", labels=["stage"]
        )
        processed = CounterMetricFamily(
            "tenantguard_stage_processed",
            "What stages processed (events, findings, incidents, notifications, ...).",
            labels=["stage", "kind"],
        )
        errors = CounterMetricFamily(
            "tenantguard_stage_errors", "Stage errors by kind.", labels=["stage", "kind"]
        )
        for name, record in records.items():
            if record.last_success is not None:
                last.add_metric([name], record.last_success)
            runs.add_metric([name], record.runs)
            busy.add_metric([name], record.seconds_total)
            for kind, value in record.totals.items():
                processed.add_metric([name, kind], value)
            for kind, value in record.errors.items():
                errors.add_metric([name, kind], value)
        yield last
        yield runs
        yield busy
        yield processed
        yield errors
        queued = GaugeMetricFamily("tenantguard_pipeline_queued_jobs", "Pipeline jobs waiting to run.")
        queued.add_metric([], self.cycle.queued())
        yield queued

    def engine(self) -> Any:
        from pipeline.status import read_engine_stages

        with self._lock:
            if self._engine is None or time.monotonic() - self._engine_at > self.ttl:
                self._engine = read_engine_stages(self.db)
                self._engine_at = time.monotonic()
            return self._engine

    def _engine_series(self) -> Iterator[Any]:
        """The stages run on `tenantguard worker` processes (Procrastinate): read from its tables."""
        engine = self.engine()
        if not engine.jobs:
            return
        last = GaugeMetricFamily(
            "tenantguard_stage_last_success_timestamp_seconds",
            "When a job running each stage last finished (workers).",
            labels=["stage"],
        )
        for stage, at in sorted(engine.last_success.items()):
            last.add_metric([stage], at)
        yield last
        jobs = GaugeMetricFamily(
            "tenantguard_worker_jobs",
            "Worker jobs by task and status (todo, doing, succeeded, failed, ...) in the kept history.",
            labels=["task", "status"],
        )
        for (task, status), count in sorted(engine.jobs.items()):
            jobs.add_metric([task, status], count)
        yield jobs
        queued = GaugeMetricFamily("tenantguard_pipeline_queued_jobs", "Pipeline jobs waiting to run.")
        queued.add_metric([], engine.due)
        yield queued


class MetricsMiddleware:
    """Count and time every request under its route template (never the raw path: ids would explode)."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.in_flight.dec()
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
