"""Exceptions expire loudly: the cycle's exceptions stage announces each one once, audited."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlmodel import select

from compliance.exceptions import ExceptionRequest, approve_exception, request_exception, state_of
from core.audit import Actor, AuditAction
from core.clock import utcnow
from core.db import Database
from core.models import AuditRecord, ComplianceException
from pipeline.stages import SCHEDULER_ACTOR, StageContext, exceptions_stage


def test_an_exception_ending_within_a_week_is_announced_once_and_then_counts_as_expired(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    now = utcnow()
    with db.session() as session:
        row = request_exception(
            session,
            ExceptionRequest(
                "m365.mfa_admins", "ciso@example.com", "break-glass accounts only", now + timedelta(days=3)
            ),
            actor=Actor.cli("principal:alice"),
            now=now,
        )
        far = request_exception(
            session,
            ExceptionRequest(
                "m365.mfa_all_users",
                "ciso@example.com",
                "pilot group only, until Q3",
                now + timedelta(days=90),
            ),
            actor=Actor.cli("principal:alice"),
            now=now,
        )
        approve_exception(session, row.id or 0, actor=Actor.cli("principal:bob"), now=now)
        approve_exception(session, far.id or 0, actor=Actor.cli("principal:bob"), now=now)
    with caplog.at_level(logging.WARNING, logger="tenantguard.pipeline"):
        first = exceptions_stage(db, db.settings, SCHEDULER_ACTOR, StageContext(now=now))
    assert first.counts == {"exceptions_expiring": 1}
    assert "m365.mfa_admins" in caplog.text and "ciso@example.com" in caplog.text
    second = exceptions_stage(db, db.settings, SCHEDULER_ACTOR, StageContext(now=now))
    assert second.skipped and not second.counts
    with db.session(readonly=True) as session:
        records = session.exec(
            select(AuditRecord).where(AuditRecord.action == AuditAction.COMPLIANCE_EXCEPTION_EXPIRING.value)
        ).all()
        assert [r.object_id for r in records] == [str(row.id)]
        stored = session.get(ComplianceException, row.id)
        assert stored is not None
        assert state_of(stored, now) == "active" and state_of(stored, now + timedelta(days=4)) == "expired"
