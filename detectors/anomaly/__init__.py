"""Anomaly detection: per-person baselines, explicit checks (impossible travel, new country/network/device,
unusual hour, volume spikes, password spray, MFA fatigue) and an IsolationForest over sign-in sessions.

Entry points: :func:`detect_anomalies` (judges stored events in event time, with its own cursors;
`detectors.pipeline.detect_new` runs it after the rules), :func:`build_baselines` (learn only).
Settings: :class:`AnomalyConfig` (env prefix ``TENANTGUARD_ANOMALY_``).
"""

from detectors.anomaly.config import AnomalyConfig
from detectors.anomaly.engine import AnomalyEngine
from detectors.anomaly.service import AnomalyReport, build_baselines, detect_anomalies, signal_handoff

__all__ = [
    "AnomalyConfig",
    "AnomalyEngine",
    "AnomalyReport",
    "build_baselines",
    "detect_anomalies",
    "signal_handoff",
]
