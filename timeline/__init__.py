"""Findings become incidents: grouping, priority, conversations (redacted), lifecycle, metrics, reports.

Entry point: :func:`build_incidents` (the pipeline stage). Redaction of messages and of every
free-text field lives in :mod:`core.redaction`. Analyst operations live in
:mod:`timeline.lifecycle`, reads in :mod:`timeline.queries`.
"""

from timeline.build import build_incidents

__all__ = ["build_incidents"]
