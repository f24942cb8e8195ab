"""Findings become incidents: grouping, priority, conversations (redacted), lifecycle, metrics, reports.

Entry points: :func:`build_incidents` (the pipeline stage) and :func:`timeline.redaction.redact`
(collectors call it before storing any message). Analyst operations live in
:mod:`timeline.lifecycle`, reads in :mod:`timeline.queries`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_incidents"]


def build_incidents(db: Any, settings: Any = None, **kwargs: Any) -> list[int]:
    """Group open findings into incidents, link conversations, set priority (see timeline.build)."""
    from timeline.build import build_incidents as build

    return build(db, settings, **kwargs)
