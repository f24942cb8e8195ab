"""Customer impact score, 0–100: how much of the customer an incident touches, how badly, how long.

The incident-management literature scores impact on scope, severity and duration (the "impact"
of an incident as opposed to its urgency); ours, each part explained with its figures:

* scope (up to 40) — people affected (the people it is about; all it names when they are too
  many to group by):
  up to 16 points, 8 × log₂(1 + people) capped; data: up to 14 points, 5 per file touched up to
  two files, +4 when a file looks sensitive or is labelled so, +4 when one is exposed outside;
  apps and providers: up to 10 points, 3 per third-party app named and 3 per extra provider;
* severity (up to 40) — 40 × the weight of the most severe finding (critical 1.0, high 0.75, ...);
* duration (up to 20) — from the first sign to containment (or the last activity while not
  contained): 6 × log₂(1 + hours), capped.

Bands: high ≥ 60, medium ≥ 35, low below. The score is stored with the priority factors
(``priority_factors["impact"]``), shown by ``incidents show`` and in the incident report and
postmortems, and used by priority: an impact of ``LIFTS_TO_P2`` or more makes a P3/P4 a P2 (a
medium finding that already reached a hundred people's data is not a P3).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from timeline.priority import severity_weight

LIFTS_TO_P2 = 70
BANDS = (("high", 60), ("medium", 35))


def _band(score: float) -> str:
    return next((name for name, floor in BANDS if score >= floor), "low")


def customer_impact(
    *,
    people: int,
    files: int,
    apps: int,
    providers: int,
    sensitive: bool,
    exposed: bool,
    severity: str,
    started: datetime,
    ended: datetime,
) -> dict[str, Any]:
    """The score with its three factors (pure)."""
    people_points = min(16.0, 8 * math.log2(1 + max(0, people)))
    data_points = min(14.0, 5 * min(files, 2) + (4 if sensitive else 0) + (4 if exposed else 0))
    app_points = min(10.0, 3 * apps + 3 * max(0, providers - 1))
    scope = round(people_points + data_points + app_points, 1)
    weight = severity_weight(severity)
    severity_points = round(40 * weight, 1)
    hours = max(0.0, (ended - started).total_seconds() / 3600)
    duration_points = round(min(20.0, 6 * math.log2(1 + hours)), 1)
    score = round(scope + severity_points + duration_points, 1)
    data = (
        f"{files} file{'' if files == 1 else 's'}"
        + (", sensitive" if sensitive else "")
        + (", exposed outside" if exposed else "")
    )
    return {
        "score": score,
        "band": _band(score),
        "formula": "scope (≤ 40) + severity (≤ 40) + duration (≤ 20)",
        "factors": {
            "scope": {
                "points": scope,
                "people": people,
                "files": files,
                "apps": apps,
                "providers": providers,
                "why": f"{people} {'person' if people == 1 else 'people'}; {data}; "
                f"{apps} app{'' if apps == 1 else 's'}, {providers} provider{'' if providers == 1 else 's'}",
            },
            "severity": {"points": severity_points, "why": f"most severe finding {severity} (×{weight})"},
            "duration": {
                "points": duration_points,
                "hours": round(hours, 2),
                "why": f"{hours:.1f} h from the first sign to containment or the last activity",
            },
        },
    }


def describe(impact: dict[str, Any]) -> str:
    """One line: 'impact 64 (high): scope 24 — ...; severity 30 — ...; duration 10 — ...'."""
    parts = "; ".join(
        f"{name} {factor['points']:g} — {factor['why']}" for name, factor in impact["factors"].items()
    )
    return f"impact {impact['score']:g} ({impact['band']}): {parts}"
