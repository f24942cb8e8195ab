"""Anomaly detection: per-person baselines, explicit checks (impossible travel, new country/network/device,
unusual hour, volume spikes, password spray, MFA fatigue) and an IsolationForest over sign-in sessions.

Entry points: :func:`detect_anomalies` (judges stored events in event time, with its own cursors;
`detectors.pipeline.detect_new` runs it after the rules, handing over what the rules stage read:
:func:`signal_handoff`), one engine per tenant partition (`detectors.partitions`): its own
cursors, baselines, model and watermark.
Settings: :class:`AnomalyConfig` (env prefix ``TENANTGUARD_ANOMALY_``).

How an event is judged depends only on the events and on what was collected when, never on the
order they were stored in (ids) or how the work was cut into passes:

- Events are judged in event time, up to the time every stream the models read of the partition's
  connections is collected to (the watermark, `pipeline.watermark`); events of one instant in the order of their provider
  identity (provider, stream, provider id). Each day is judged against the baseline of the days
  before it, with that day's earlier events as context.
- An event stored after the judging had passed its time (a late arrival: collected after the
  watermark passed it, e.g. a Google report that lags) is judged when it is found, against what
  is known then, and folded into the baseline.
- A backlog stored at once (a first collection, a catch-up) has no late arrivals: every pass
  first looks at every event committed so far, then judges the next slice of event time.
"""

from detectors.anomaly.config import AnomalyConfig
from detectors.anomaly.engine import AnomalyEngine
from detectors.anomaly.service import AnomalyReport, detect_anomalies, signal_handoff

__all__ = [
    "AnomalyConfig",
    "AnomalyEngine",
    "AnomalyReport",
    "detect_anomalies",
    "signal_handoff",
]
