"""The cycle, defined once: collect -> detect -> posture -> identity -> incidents -> notify -> approved steps
-> retention (each data class older than its retention deleted, legal holds kept; compliance.retention)
-> audit checkpoint (the audit chain's head signed, core.audit.write_checkpoint).

Layer: above collectors, detectors, identity, timeline and remediation; below api and cli.

- :data:`pipeline.stages.STAGES` — the ordered stage list; a stage is ``Stage(name, fn)`` with
  ``fn(db, settings, actor, ctx) -> StageResult``; adding one (e.g. on-call escalations) is one line.
- :func:`run_cycle` — every stage once (demo, benchmarks, tests); :class:`Cycle` — the long-lived
  form a service holds, with a :class:`StageBook` of what each stage did.
- :mod:`pipeline.jobs` — the jobs (``detect``, ``analyse``, ``sweep``) and the engine-neutral
  :class:`pipeline.jobs.Scheduler` seam; :mod:`pipeline.embedded` runs them on APScheduler.
- :mod:`pipeline.health` — stream and stage lag read from the database.
"""

from __future__ import annotations

from pipeline.cycle import Cycle, CycleResult, StageBook, run_cycle
from pipeline.stages import STAGES, Stage, StageContext, StageResult

__all__ = ["STAGES", "Cycle", "CycleResult", "Stage", "StageBook", "StageContext", "StageResult", "run_cycle"]
