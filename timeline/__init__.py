"""Findings become incidents: grouping, priority, conversations (redacted), lifecycle, metrics, reports.

Entry points: :func:`build_incidents` (the pipeline stage) and :func:`timeline.redaction.redact`
(collectors call it before storing any message). Analyst operations live in
:mod:`timeline.lifecycle`, reads in :mod:`timeline.queries`.
"""

from timeline.build import build_incidents

__all__ = ["build_incidents"]
