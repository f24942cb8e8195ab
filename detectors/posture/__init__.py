"""Posture checks (YAML data in rules/posture/) evaluated over configuration snapshots, with drift and scores.

Entry points: :func:`evaluate` (every check on every connection's newest snapshots; results,
score history, posture and drift findings), :func:`run_check_tests` (each check's own passing and
failing snapshots, for ``tenantguard rules test``) and :func:`load_checks`.
"""

from detectors.posture.checks import PostureCheck, load_checks
from detectors.posture.evaluation import CheckStatus, CheckTestResult, run_check_tests
from detectors.posture.service import (
    PostureReport,
    evaluate,
    latest_scores,
    score_history,
    snapshots_pending,
)

__all__ = [
    "CheckStatus",
    "CheckTestResult",
    "PostureCheck",
    "PostureReport",
    "evaluate",
    "latest_scores",
    "load_checks",
    "run_check_tests",
    "score_history",
    "snapshots_pending",
]
