"""Per-caller token buckets: a sustained rate with a burst allowance, kept in this process's memory.

Each API process limits on its own; behind a load balancer with N processes the effective limit
is N times the configured one.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

_MAX_KEYS = 50_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    def __init__(self, rate_per_second: float, burst: int) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str) -> float | None:
        """Take one token for `key`; None when allowed, else the seconds until one is available."""
        if not self.enabled:
            return None
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_KEYS:
                    self._forget_idle(now)
                bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
            else:
                bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
                bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.rate

    def wait(self, key: str) -> float | None:
        """Like `acquire` but takes nothing: None while `key` has a token, else the seconds until it has."""
        if not self.enabled:
            return None
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return None
            tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            return None if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled completely: forgetting them changes nothing."""
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]


def retry_after_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))
