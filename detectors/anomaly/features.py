"""Engineered sign-in features for the session model (one row per sign-in, columns = model.FEATURES)."""

from __future__ import annotations

import numpy as np

from detectors.anomaly.baseline import BaselineSet
from detectors.anomaly.rules import BatchView, is_hosting, travel_speeds
from detectors.anomaly.signals import Outcome


def _novelty(seen: np.ndarray) -> np.ndarray:
    """1 for a never-seen value, shrinking with familiarity; 0.5 when the value is unknown."""
    return np.where(seen < 0, 0.5, 1.0 / (1.0 + np.maximum(seen, 0)))


def session_features(view: BatchView, base: BaselineSet) -> np.ndarray:
    cols = view.cols
    n = len(cols)
    features = np.zeros((n, 8), dtype=np.float32)
    if n == 0:
        return features
    person = view.person
    known = person >= 0
    hour = ((cols.ts % 86400) // 3600).astype(np.int64)
    rarity = np.full(n, 0.5)
    if known.any():
        hist = base.hours[person[known]]
        h = hour[known]
        rows = np.arange(len(h))
        near = hist[rows, h] + hist[rows, (h - 1) % 24] + hist[rows, (h + 1) % 24]
        total = hist.sum(axis=1)
        rarity[known] = np.where(total > 0, 1.0 - near / np.maximum(total, 1), 0.5)
    _, distance, hours, _ = travel_speeds(view, base)
    speed = np.nan_to_num(distance / hours, nan=0.0)
    features[:, 0] = rarity
    features[:, 1] = _novelty(view.seen_country)
    features[:, 2] = _novelty(view.seen_network)
    features[:, 3] = _novelty(view.seen_device)
    features[:, 4] = np.log1p(np.minimum(speed, 1e6))
    features[:, 5] = np.log1p(np.nan_to_num(distance, nan=0.0))
    features[:, 6] = cols.outcome != Outcome.SUCCESS.value
    networks = {value: is_hosting(value) for value in set(cols.network.tolist())}
    features[:, 7] = np.fromiter((networks[v] for v in cols.network), dtype=np.float32, count=n)
    return features
