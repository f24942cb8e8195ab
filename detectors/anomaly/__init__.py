"""Anomaly detection: per-person baselines, explicit checks (impossible travel, new country/network/device,
unusual hour, volume spikes, password spray, MFA fatigue) and an IsolationForest over sign-in sessions.

Entry points: :func:`anomaly_detectors` (register with ``detectors.pipeline.DetectionPipeline``),
:func:`detect_anomalies` (standalone run with its own cursor), :func:`build_baselines` (learn only).
Settings: :class:`AnomalyConfig` (env prefix ``TENANTGUARD_ANOMALY_``).
"""

from detectors.anomaly.config import AnomalyConfig
from detectors.anomaly.engine import AnomalyEngine
from detectors.anomaly.service import (
    AnomalyDetector,
    AnomalyReport,
    anomaly_detectors,
    build_baselines,
    detect_anomalies,
)

__all__ = [
    "AnomalyConfig",
    "AnomalyDetector",
    "AnomalyEngine",
    "AnomalyReport",
    "anomaly_detectors",
    "build_baselines",
    "detect_anomalies",
]
