"""The uvicorn server `serve` runs: uvicorn's graceful shutdown, then a deadline.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections and gives requests in flight
`timeout_graceful_shutdown` seconds. A handler runs in a worker thread that cannot be
interrupted, and Python waits for such threads at exit; so a few seconds after the grace period
the process exits whatever still runs. Every write is one transaction: nothing half-done is kept.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import uvicorn

log = logging.getLogger("tenantguard.serve")

# After the grace period: time for the lifespan shutdown, the scheduler and the database to close.
_CLOSING_SECONDS = 5.0


class StoppingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, grace: float) -> None:
        super().__init__(config)
        self.grace = grace

    def handle_exit(self, sig: int, frame: Any) -> None:
        if not self.should_exit:
            threading.Thread(
                target=_exit_after, args=(self.grace + _CLOSING_SECONDS,), name="stop-deadline", daemon=True
            ).start()
        super().handle_exit(sig, frame)


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)  # a deadline, not synchronisation: the orderly shutdown had its chance
    busy = [t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    log.warning("still busy %.0f s after the stop signal (%s); exiting now", seconds, ", ".join(busy) or "-")
    logging.shutdown()
    os._exit(0)
