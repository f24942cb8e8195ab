"""Response collaboration: incident channels, stakeholder updates, status page, alert intake, tickets, postmortems, drills.

Entry point for the service: ``run_due(db, settings, now)`` (the cycle's ``response`` stage,
``pipeline.stages``), derived from database state and safe to repeat. The API edge calls
``response.intake`` (signed alerts), ``response.updates`` (write / publish), ``response.statuspage``
(public page), ``response.postmortem`` and ``response.drills``.
"""

from response.service import run_due

__all__ = ["run_due"]
