"""Posture reads, through the posture stage's score functions and check catalogue."""

from __future__ import annotations

from sqlmodel import col, select

from api.context import RequestContext
from api.posture.schemas import CheckOut, CheckResultOut, ScoreOut
from core.models import PostureResult
from detectors.posture.service import latest_scores, score_history, shipped_checks


def scores(ctx: RequestContext) -> list[ScoreOut]:
    return [ScoreOut.model_validate(s) for s in latest_scores(ctx.db)]


def history(ctx: RequestContext, *, connection_id: int | None, category: str, limit: int) -> list[ScoreOut]:
    rows = score_history(ctx.db, connection_id=connection_id, category=category, limit=limit)
    return [ScoreOut.model_validate(s) for s in rows]


def checks(ctx: RequestContext, provider: str | None) -> list[CheckOut]:
    """Every shipped check with its result in each connection's newest evaluation run."""
    runs = {s.run_id for s in latest_scores(ctx.db)}
    results: dict[str, list[CheckResultOut]] = {}
    if runs:
        with ctx.db.session(readonly=True) as session:
            rows = session.exec(
                select(PostureResult)
                .where(col(PostureResult.run_id).in_(sorted(runs)))
                .order_by(col(PostureResult.connection_id))
            ).all()
        for row in rows:
            results.setdefault(row.check_id, []).append(CheckResultOut.model_validate(row))
    return [
        CheckOut(
            id=check.id,
            provider=check.provider.value,
            title=check.title,
            severity=check.severity.value,
            category=str(check.category),
            object_type=check.object_type,
            rationale=check.rationale,
            references=list(check.references),
            mitre=list(check.mitre),
            drift=check.drift,
            results=results.get(check.id, []),
        )
        for check in shipped_checks()
        if provider is None or check.provider.value == provider
    ]
