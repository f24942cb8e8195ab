"""The processes chaos kills: a collector pass, or a detection + incident pass, on one database.

``python -m bench.chaos_worker collect|detect DATABASE_URL DATA_DIR`` runs that stage once with
the brief's entry points and exits 0; a stage that has not landed yet exits 3 with its name.
It prints ``started`` as soon as the stage begins, so the killer knows the process is inside the
product's code rather than still importing. Nothing here is a benchmark (no ``run``).
"""

from __future__ import annotations

import sys
from pathlib import Path

MISSING_STAGE = 3


def _settings(database_url: str, data_dir: str):  # type: ignore[no-untyped-def]
    from core.settings import Settings

    return Settings(data_dir=Path(data_dir), database_url=database_url)


def collect(database_url: str, data_dir: str) -> int:
    try:
        from collectors import collect_once
    except ImportError:
        print("missing stage: collectors.collect_once", flush=True)
        return MISSING_STAGE
    from core.db import Database

    settings = _settings(database_url, data_dir)
    db = Database.from_settings(settings)
    print("started", flush=True)
    report = collect_once(db, settings)
    print(f"done {report!r:.300}", flush=True)
    db.dispose()
    return 0


def detect(database_url: str, data_dir: str) -> int:
    try:
        from detectors.pipeline import detect_new
        from timeline import build_incidents
    except ImportError as exc:
        print(f"missing stage: {exc}", flush=True)
        return MISSING_STAGE
    from core.db import Database

    settings = _settings(database_url, data_dir)
    db = Database.from_settings(settings)
    print("started", flush=True)
    detect_new(db, settings)
    incidents = build_incidents(db, settings)
    print(f"done {len(incidents)} incidents", flush=True)
    db.dispose()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("collect", "detect"):
        print("usage: python -m bench.chaos_worker collect|detect DATABASE_URL DATA_DIR", file=sys.stderr)
        return 2
    stage, url, data_dir = argv
    return collect(url, data_dir) if stage == "collect" else detect(url, data_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
