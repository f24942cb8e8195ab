"""Sign-in session model: engineered features, a scikit-learn IsolationForest, stored without pickle.

Training uses :class:`sklearn.ensemble.IsolationForest`. The fitted trees are then exported as
plain arrays (children, split feature, threshold, leaf path lengths) into a ``.npz`` file under
the data directory, and the file's SHA-256 is recorded in the database. Loading reads the bytes,
checks the hash, and parses them with ``numpy.load(allow_pickle=False)``: no pickle, joblib or
skops payload is ever deserialised, so a file swapped by someone who can write the data
directory can at worst be refused (hash mismatch), never execute code. Scoring walks all trees
at once with numpy (no per-row Python), which is what makes 100,000+ sign-ins/s possible.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from detectors.anomaly.errors import ModelIntegrityError

FEATURES = (
    "hour_rarity",
    "country_novelty",
    "network_novelty",
    "device_novelty",
    "log_speed_kmh",
    "log_distance_km",
    "failed",
    "hosting_network",
)


def average_path_length(n: np.ndarray | float) -> np.ndarray:
    """c(n): the average path length of an unsuccessful BST search (the IsolationForest normaliser)."""
    n = np.asarray(n, dtype=np.float64)
    result = np.zeros_like(n)
    result[n == 2] = 1.0
    big = n > 2
    result[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return result


@dataclass(frozen=True)
class ForestArrays:
    """Every tree of the forest packed into flat arrays (node ids are global)."""

    roots: np.ndarray  # (trees,)
    feature: np.ndarray  # (nodes,) global feature index, -1 at leaves
    threshold: np.ndarray  # (nodes,)
    left: np.ndarray  # (nodes,) leaves point at themselves
    right: np.ndarray
    leaf_depth: np.ndarray  # (nodes,) depth + c(samples) at leaves
    depth: int
    normaliser: float  # c(max_samples)
    alert_score: float  # score above which a session is reported
    medians: np.ndarray  # training medians per feature, for explanations
    spreads: np.ndarray

    def score(self, features: np.ndarray, batch: int = 65536) -> np.ndarray:
        """Anomaly score in (0, 1]; ~0.5 is ordinary, close to 1 is isolated quickly (anomalous).

        One tree at a time over the whole batch, with the feature matrix stored column-major so
        each level is a handful of flat gathers (about 8 numpy passes per level, no Python per row).
        """
        x = np.ascontiguousarray(features, dtype=np.float32)
        if len(x) > 1 and x.ndim == 2:
            # Sign-ins repeat: a person's usual place, network and device at a usual hour give the
            # same feature row again and again. Each row's score depends on its bytes alone, so
            # the distinct rows are scored and the scores mapped back (identical to every row).
            rows = x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()
            distinct, inverse = np.unique(rows, return_inverse=True)
            if len(distinct) < len(x) * 0.9:
                unique_rows = distinct.view(x.dtype).reshape(len(distinct), x.shape[1])
                return self._score_rows(unique_rows, batch)[inverse.ravel()]
        return self._score_rows(x, batch)

    def _score_rows(self, x: np.ndarray, batch: int) -> np.ndarray:
        out = np.empty(len(x), dtype=np.float64)
        children = np.stack([self.left, self.right], axis=1).ravel().astype(np.int32)
        threshold = self.threshold.astype(np.float32)
        feature = np.maximum(self.feature, 0).astype(np.int32)
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            n = len(chunk)
            columns = np.ascontiguousarray(chunk.T).ravel()
            offsets = feature * n
            base = np.arange(n, dtype=np.int32)
            total = np.zeros(n, dtype=np.float64)
            for root in self.roots.tolist():
                node = np.full(n, root, dtype=np.int32)
                for _ in range(self.depth):
                    value = columns[offsets[node] + base]
                    node = children[2 * node + (value > threshold[node])]
                total += self.leaf_depth[node]
            out[start : start + n] = np.power(2.0, -(total / len(self.roots)) / self.normaliser)
        return out

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            roots=self.roots,
            feature=self.feature,
            threshold=self.threshold,
            left=self.left,
            right=self.right,
            leaf_depth=self.leaf_depth,
            scalars=np.array([self.depth, self.normaliser, self.alert_score], dtype=np.float64),
            medians=self.medians,
            spreads=self.spreads,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ForestArrays:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            scalars = arrays["scalars"]
            return cls(
                roots=arrays["roots"],
                feature=arrays["feature"],
                threshold=arrays["threshold"].astype(np.float32),
                left=arrays["left"],
                right=arrays["right"],
                leaf_depth=arrays["leaf_depth"],
                depth=int(scalars[0]),
                normaliser=float(scalars[1]),
                alert_score=float(scalars[2]),
                medians=arrays["medians"],
                spreads=arrays["spreads"],
            )

    def explain(self, row: np.ndarray, top: int = 3) -> list[tuple[str, float, float]]:
        """The features furthest from what training saw: (name, value, training median)."""
        distance = np.abs(row - self.medians) / np.maximum(self.spreads, 1e-3)
        order = np.argsort(-distance)[:top]
        return [(FEATURES[i], float(row[i]), float(self.medians[i])) for i in order if distance[i] > 1.0]


def export_forest(forest: Any, training: np.ndarray, alert_quantile: float) -> ForestArrays:
    """Flatten a fitted sklearn IsolationForest into ForestArrays (and calibrate the alert score)."""
    roots, features, thresholds, lefts, rights, leaf_depths = [], [], [], [], [], []
    offset = 0
    max_depth = 0
    for tree_model, feature_subset in zip(forest.estimators_, forest.estimators_features_, strict=True):
        tree = tree_model.tree_
        n = tree.node_count
        left = tree.children_left.astype(np.int64)
        right = tree.children_right.astype(np.int64)
        is_leaf = left == -1
        depth = np.zeros(n, dtype=np.int64)
        for node in range(n):  # nodes are numbered depth-first: parents come before children
            if not is_leaf[node]:
                depth[left[node]] = depth[node] + 1
                depth[right[node]] = depth[node] + 1
        max_depth = max(max_depth, int(depth.max()))
        local = np.arange(n, dtype=np.int64)
        feature = np.where(is_leaf, -1, np.asarray(feature_subset)[np.maximum(tree.feature, 0)])
        roots.append(offset)
        features.append(feature)
        thresholds.append(np.where(is_leaf, np.inf, tree.threshold))
        lefts.append(np.where(is_leaf, local, left) + offset)
        rights.append(np.where(is_leaf, local, right) + offset)
        leaf_depths.append(np.where(is_leaf, depth + average_path_length(tree.n_node_samples), 0.0))
        offset += n
    arrays = ForestArrays(
        roots=np.array(roots, dtype=np.int64),
        feature=np.concatenate(features).astype(np.int64),
        threshold=np.concatenate(thresholds).astype(np.float32),
        left=np.concatenate(lefts),
        right=np.concatenate(rights),
        leaf_depth=np.concatenate(leaf_depths),
        depth=max_depth,
        normaliser=float(average_path_length(np.array([forest.max_samples_]))[0]),
        alert_score=1.0,
        medians=np.median(training, axis=0),
        spreads=np.maximum(np.percentile(training, 75, axis=0) - np.percentile(training, 25, axis=0), 0.05),
    )
    scores = arrays.score(training)
    alert = float(np.quantile(scores, alert_quantile)) if len(scores) else 1.0
    return ForestArrays(**{**arrays.__dict__, "alert_score": max(alert, 0.6)})


def train(
    features: np.ndarray,
    *,
    trees: int = 100,
    sample: int = 256,
    alert_quantile: float = 0.9995,
    seed: int = 0,
) -> ForestArrays:
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=trees, max_samples=min(sample, len(features)), random_state=seed)
    forest.fit(features.astype(np.float32))
    return export_forest(forest, features, alert_quantile)


@dataclass(frozen=True)
class StoredModel:
    path: Path
    sha256: str


def save(forest: ForestArrays, models_dir: Path, trained_at: datetime) -> StoredModel:
    """Write the parameters (not a pickle) and return the path and the hash to record."""
    models_dir.mkdir(parents=True, exist_ok=True)
    data = forest.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    path = models_dir / f"signin-forest-{trained_at.strftime('%Y%m%dT%H%M%S')}-{digest[:12]}.npz"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return StoredModel(path, digest)


def load(path: Path, sha256: str) -> ForestArrays:
    """Read a model file only if its bytes hash to what was recorded at training time."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read model {path} ({exc}); it will be retrained") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelIntegrityError(
            f"model file {path} has SHA-256 {actual[:16]}…, not the {sha256[:16]}… recorded when it was trained; "
            "refusing to load it (it will be retrained)"
        )
    return ForestArrays.from_bytes(data)
