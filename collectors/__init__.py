"""Collectors: read Microsoft 365, Google Workspace and Slack through their official clients and
store events, configuration snapshots and (redacted) conversations exactly once.

Entry points:

* :func:`collect_once` — every enabled stream of every enabled connection, once;
* :func:`collectors.scheduler.build_scheduler` — the same on an interval per stream (APScheduler);
* :mod:`collectors.clients` — the client factories (remediation reuses them for writes);
* :func:`connections_from_simulator` — connection definitions for a running simulator;
* :func:`collectors.ingest.ingest_files` — exported logs through the same normalisers.
"""

from collectors.report import CollectionReport, RunStatus, StreamResult
from collectors.runner import collect_once
from collectors.simulator_link import connections_from_simulator

__all__ = ["CollectionReport", "RunStatus", "StreamResult", "collect_once", "connections_from_simulator"]
