"""Collectors: read Microsoft 365, Google Workspace and Slack through their official clients and
store events, configuration snapshots and (redacted) conversations exactly once.

Entry points:

* :func:`collect_once` — every enabled stream of every enabled connection, once;
* :func:`collectors.scheduler.build_scheduler` — the same on an interval per stream (APScheduler);
* :mod:`collectors.clients` — the client factories (remediation reuses them for writes);
* :func:`connections_from_simulator` — connection definitions for a running simulator;
* :func:`collectors.ingest.ingest_files` — exported logs through the same normalisers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collectors.report import CollectionReport, RunStatus, StreamResult

if TYPE_CHECKING:
    from collectors.connections import ConnectionDefinition
    from core.db import Database
    from core.settings import Settings


def collect_once(
    db: Database,
    settings: Settings,
    *,
    connections: Any = None,
    streams: Any = None,
    **kwargs: Any,
) -> CollectionReport:
    """Every enabled stream of every enabled connection once (see `collectors.runner.collect_once`)."""
    from collectors.runner import collect_once as run

    return run(db, settings, connections=connections, streams=streams, **kwargs)


def connections_from_simulator(info: dict[str, Any], **kwargs: Any) -> list[ConnectionDefinition]:
    """Connection definitions for a simulator's JSON line (see `collectors.simulator_link`)."""
    from collectors.simulator_link import connections_from_simulator as build

    return build(info, **kwargs)


__all__ = ["CollectionReport", "RunStatus", "StreamResult", "collect_once", "connections_from_simulator"]
