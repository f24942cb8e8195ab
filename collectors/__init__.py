"""Collectors: read Microsoft 365, Google Workspace and Slack through their official clients and
store events, configuration snapshots and (redacted) conversations exactly once. The client
factories and read calls are :mod:`providers`' (remediation and notifications share them).

Entry points:

* :func:`collect_once` — every enabled stream of every enabled connection, once;
* :func:`collectors.scheduler.build_scheduler` — the same on an interval per stream (APScheduler);
* :func:`connections_from_simulator` — connection definitions for a running simulator;
* :func:`collectors.ingest.ingest_files` — exported logs through the same normalisers.
"""

from collectors.report import CollectionReport, RunStatus, StreamResult
from collectors.runner import collect_once
from collectors.simulator_link import connections_from_simulator

__all__ = ["CollectionReport", "RunStatus", "StreamResult", "collect_once", "connections_from_simulator"]
