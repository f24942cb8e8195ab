"""Identity tests write the same snapshots the posture tests do."""

from tests.detectors.posture.conftest import connection, store_snapshot

__all__ = ["connection", "store_snapshot"]
