"""The processes chaos kills: a collector pass, or a detection + incident pass, on one database.

``python -m bench.chaos_worker collect|detect DATABASE_URL DATA_DIR`` runs that stage once with
the product's entry points (`collectors.collect_once`, `pipeline.run_cycle`) and exits 0; a stage that has not landed yet exits 3 with its name.
It prints ``started`` as soon as the stage begins, so the killer knows the process is inside the
product's code rather than still importing. Nothing here is a benchmark (no ``run``).
"""

from __future__ import annotations

import sys
from pathlib import Path

MISSING_STAGE = 3


def _settings(database_url: str, data_dir: str):
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
    """The cycle after collection (detection, posture, identity, incidents, notify, steps)."""
    try:
        from pipeline import run_cycle
    except ImportError as exc:
        print(f"missing stage: {exc}", flush=True)
        return MISSING_STAGE
    from core.db import Database

    settings = _settings(database_url, data_dir)
    db = Database.from_settings(settings)
    print("started", flush=True)
    cycle = run_cycle(db, settings, skip=("collect",))
    print(f"done {cycle.count('incidents', 'incidents')} incidents", flush=True)
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
