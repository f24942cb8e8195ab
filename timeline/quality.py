"""How well incidents match a simulator scenario's ground truth (for tests, bench and the demo).

A story is "in" an incident when one of the incident's findings cites one of the story's events
(duplicates count as the incident they were merged into). Reported: stories split across several
incidents, incidents merging several stories, incidents matching no story (with their priority),
and the conversation messages attached versus the story's own (precision/recall); incidents by
priority and per 1,000 users per week, MTTD counted from when the first event could be read, and
what the daily digests hold (mass changes, findings inside declared change windows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from core.db import Database
from core.models.enums import TimelineEntryKind
from core.models.event import Event
from core.models.finding import Finding
from core.models.incident import Incident, Message, TimelineEntry
from core.models.noise import Digest


def _ids_by_provider_id(
    session: Any, model: Any, id_column: str, refs: Iterable[Mapping[str, Any]]
) -> dict[tuple[str, str, str], int]:
    wanted = {(str(r.get("provider")), str(r.get("stream")), str(r.get("id"))) for r in refs}
    found: dict[tuple[str, str, str], int] = {}
    provider_ids = sorted({w[2] for w in wanted})
    column = getattr(model, id_column)
    for start in range(0, len(provider_ids), 1000):
        chunk = provider_ids[start : start + 1000]
        rows = session.execute(
            select(col(model.id), col(model.provider), col(model.stream), col(column)).where(
                col(column).in_(chunk)
            )
        ).all()
        for row in rows:
            key = (row[1], row[2], row[3])
            if key in wanted:
                found[key] = row[0]
    return found


def _final(incident_id: int, merged_into: Mapping[int, int | None]) -> int:
    seen = set()
    while merged_into.get(incident_id) and incident_id not in seen:
        seen.add(incident_id)
        incident_id = merged_into[incident_id] or incident_id
    return incident_id


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return round(ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2, 1)


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def score_against_truth(db: Database, truth: Mapping[str, Any]) -> dict[str, Any]:
    """Compare the incidents in `db` with the simulator's ground truth (``simulator truth`` JSON)."""
    stories = list(truth.get("stories") or [])
    decoys = list(truth.get("decoys") or [])
    with db.session(readonly=True) as session:
        event_refs = [
            e for s in [*stories, *decoys] for step in s.get("steps", []) for e in step.get("events", [])
        ]
        event_ids = _ids_by_provider_id(session, Event, "provider_event_id", event_refs)
        message_refs = [m for s in stories for m in s.get("conversations", [])]
        message_ids = _ids_by_provider_id(session, Message, "provider_message_id", message_refs)
        incidents = {
            row[0]: row
            for row in session.execute(
                select(
                    col(Incident.id),
                    col(Incident.merged_into_id),
                    col(Incident.priority),
                    col(Incident.status),
                    col(Incident.title),
                    col(Incident.detected_at),
                    col(Incident.first_readable_at),
                    col(Incident.first_event_at),
                )
            ).all()
        }
        digests = list(session.execute(select(col(Digest.finding_count), col(Digest.items))).all())
        merged_into = {i: row[1] for i, row in incidents.items()}
        incidents_of_event: dict[int, set[int]] = {}
        finding_incident: dict[int, int] = {}
        for finding_id, incident_id, evidence in session.execute(
            select(col(Finding.id), col(Finding.incident_id), col(Finding.evidence_event_ids))
        ).all():
            if incident_id is None:
                continue
            final = _final(incident_id, merged_into)
            finding_incident[finding_id] = final
            for event_id in evidence or []:
                incidents_of_event.setdefault(int(event_id), set()).add(final)
        attached: dict[int, set[int]] = {}
        for incident_id, ref_id in session.execute(
            select(col(TimelineEntry.incident_id), col(TimelineEntry.ref_id)).where(
                col(TimelineEntry.kind) == TimelineEntryKind.MESSAGE
            )
        ).all():
            if ref_id:
                attached.setdefault(_final(incident_id, merged_into), set()).add(int(ref_id))

    per_story = []
    stories_of_incident: dict[int, set[str]] = {}
    totals = {"expected": 0, "attached": 0, "correct": 0}
    for story in stories:
        story_incidents: set[int] = set()
        steps_found = 0
        detectable = 0
        for step in story.get("steps", []):
            ids = [
                event_ids.get((str(e.get("provider")), str(e.get("stream")), str(e.get("id"))))
                for e in step.get("events", [])
            ]
            hit = set().union(*(incidents_of_event.get(i, set()) for i in ids if i is not None))
            detectable += 1 if step.get("detectable") else 0
            steps_found += 1 if hit else 0
            story_incidents |= hit
        for incident_id in story_incidents:
            stories_of_incident.setdefault(incident_id, set()).add(str(story.get("id")))
        expected = {
            message_ids[key]
            for m in story.get("conversations", [])
            if (key := (str(m.get("provider")), str(m.get("stream")), str(m.get("id")))) in message_ids
        }
        got = set().union(*(attached.get(i, set()) for i in story_incidents)) if story_incidents else set()
        correct = got & expected
        totals["expected"] += len(expected)
        totals["attached"] += len(got)
        totals["correct"] += len(correct)
        per_story.append(
            {
                "id": story.get("id"),
                "title": story.get("title"),
                "incidents": sorted(story_incidents),
                "priorities": sorted({incidents[i][2] for i in story_incidents if i in incidents}),
                "steps_detectable": detectable,
                "steps_found": steps_found,
                "messages_expected": len(expected),
                "messages_attached": len(got),
                "messages_correct": len(correct),
                "messages_missing": sorted(expected - got),
                "messages_unrelated": sorted(got - expected),
            }
        )
    story_incidents_all = {i for s in per_story for i in s["incidents"]}
    per_decoy = []
    for decoy in decoys:
        decoy_hit: set[int] = set()
        for step in decoy.get("steps", []):
            for e in step.get("events", []):
                event_id = event_ids.get((str(e.get("provider")), str(e.get("stream")), str(e.get("id"))))
                if event_id is not None:
                    decoy_hit |= incidents_of_event.get(event_id, set())
        per_decoy.append(
            {
                "id": decoy.get("id"),
                "incidents": sorted(decoy_hit),
                "priorities": sorted({incidents[i][2] for i in decoy_hit if i in incidents}),
                "in_story_incident": sorted(decoy_hit & story_incidents_all),
            }
        )
    detected = [s for s in per_story if s["incidents"]]
    split = [s for s in detected if len(s["incidents"]) > 1]
    merged = {i: sorted(names) for i, names in stories_of_incident.items() if len(names) > 1}
    live = {i for i, row in incidents.items() if row[1] is None}
    decoy_incidents = {i for d in per_decoy for i in d["incidents"]}
    unmatched = sorted(live - set(stories_of_incident))
    by_priority: dict[str, int] = {}
    for incident_id in unmatched:
        by_priority[incidents[incident_id][2]] = by_priority.get(incidents[incident_id][2], 0) + 1
    stray_messages = sum(len(attached.get(i, set())) for i in unmatched)
    all_by_priority: dict[str, int] = {}
    for incident_id in live:
        all_by_priority[incidents[incident_id][2]] = all_by_priority.get(incidents[incident_id][2], 0) + 1
    users, days = int(truth.get("users") or 0), int(truth.get("days") or 0)
    per_thousand = round(len(live) / users * 1000 / days * 7, 2) if users and days else None
    story_ids = {i for s in per_story for i in s["incidents"]}
    return {
        "scenario": truth.get("scenario"),
        "users": users,
        "days": days,
        "by_priority": all_by_priority,
        "incidents_per_1000_users_week": per_thousand,
        "mttd_from_readable_seconds": _median(
            [
                (incidents[i][5] - (incidents[i][6] or incidents[i][7])).total_seconds()
                for i in sorted(story_ids & live)
                if incidents[i][5] and (incidents[i][6] or incidents[i][7])
            ]
        ),
        "digests": {
            "count": len(digests),
            "findings": sum(d[0] for d in digests),
            "mass_change_lines": sum(1 for d in digests for item in d[1] or [] if item.get("mass")),
            "change_window_lines": sum(1 for d in digests for item in d[1] or [] if item.get("changes")),
        },
        "stories": len(stories),
        "stories_detected": len(detected),
        "stories_split": len(split),
        "stories_merged": sum(len(v) for v in merged.values()),
        "incidents_merging_stories": merged,
        "exactly_one_incident": sum(
            1 for s in per_story if len(s["incidents"]) == 1 and s["incidents"][0] not in merged
        ),
        "in_one_p1_p2_incident": sum(
            1 for s in per_story if len(s["incidents"]) == 1 and set(s["priorities"]) & {"P1", "P2"}
        ),
        "incidents": len(live),
        "unmatched_incidents": {
            "count": len(unmatched),
            "by_priority": by_priority,
            "ids": unmatched,
            "from_decoys": len(set(unmatched) & decoy_incidents),
        },
        "conversations": {
            **totals,
            "precision": _ratio(totals["correct"], totals["attached"]),
            "recall": _ratio(totals["correct"], totals["expected"]),
            "on_unmatched_incidents": stray_messages,
        },
        "decoys": {
            "count": len(decoys),
            "with_incident": sum(1 for d in per_decoy if d["incidents"]),
            "at_p1_p2": sum(1 for d in per_decoy if {"P1", "P2"} & set(d["priorities"])),
            "in_story_incidents": sum(1 for d in per_decoy if d["in_story_incident"]),
            "per_decoy": per_decoy,
        },
        "per_story": per_story,
    }
