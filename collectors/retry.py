"""One retry discipline for every provider: exact Retry-After, exponential back-off, bounded re-reads.

Provider readers translate their client's exceptions into `collectors.errors` classes; this
module only decides whether and how long to wait before the same call is made again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from collectors.options import CollectorOptions
from providers.errors import MalformedResponse, Throttled, TransientError

T = TypeVar("T")
WaitHook = Callable[[float, str], None]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    malformed_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 900.0
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_options(cls, options: CollectorOptions) -> RetryPolicy:
        return cls(
            max_attempts=options.max_attempts,
            malformed_attempts=options.malformed_attempts,
            backoff_base=options.backoff_base,
            backoff_max=options.backoff_max,
            max_retry_after=options.max_retry_after,
        )

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential back-off for the `attempt`-th failure (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def run(self, call: Callable[[], T], *, on_wait: WaitHook | None = None) -> T:
        """Call until it succeeds; raise the last error when attempts run out."""
        throttled = transient = malformed = 0
        while True:
            try:
                return call()
            except Throttled as exc:
                throttled += 1
                if throttled >= self.max_attempts * 3 or exc.retry_after > self.max_retry_after:
                    raise
                self._wait(exc.retry_after, f"throttled: {exc}", on_wait)
            except TransientError as exc:
                transient += 1
                if transient >= self.max_attempts:
                    raise
                self._wait(self.backoff(transient), f"transient: {exc}", on_wait)
            except MalformedResponse as exc:
                malformed += 1
                if malformed >= self.malformed_attempts:
                    raise
                self._wait(self.backoff(malformed), f"malformed: {exc}", on_wait)

    def _wait(self, seconds: float, why: str, on_wait: WaitHook | None) -> None:
        if on_wait is not None:
            on_wait(seconds, why)
        if seconds > 0:
            self.sleep(seconds)
