"""Rules and suppressions, through the detection stage's loader, test runner and suppression store."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from sqlmodel import Session

from api.context import RequestContext
from api.errors import NotFound, Unprocessable
from api.rules.schemas import (
    RuleDocumentIn,
    RuleOut,
    RuleProblemOut,
    RuleTestIn,
    RuleTestOut,
    SuppressionIn,
    SuppressionOut,
    TestOutcomeOut,
    ValidationOut,
)
from core import loading
from core.models import Suppression
from detectors import suppressions
from detectors.pipeline import default_rules_path, load_default_pack
from detectors.sigma.definitions import CompiledCorrelation, CompiledRule, RulePack, RuleTest, TestEvent
from detectors.sigma.loader import RULE_LIMITS, load_pack
from detectors.sigma.testing import run_pack_tests, run_test

_pack_lock = threading.Lock()


def shipped_pack(ctx: RequestContext) -> RulePack:
    """The rule pack the pipeline uses, loaded once per application."""
    with _pack_lock:
        pack = ctx.state.extras.get("rule_pack")
        if pack is None:
            pack = ctx.state.extras["rule_pack"] = load_default_pack(ctx.settings)
        return pack


def _shown_source(source: object, root: Path) -> str:
    """Where the rule lives, relative to the rule pack: the server's own paths are not the caller's
    business (a rule given in a request keeps the label it was given)."""
    path = Path(str(source))
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


def _rule_out(item: CompiledRule | CompiledCorrelation, root: Path) -> RuleOut:
    alert = item.alert
    is_rule = isinstance(item, CompiledRule)
    return RuleOut(
        rule_id=item.rule_id,
        kind="rule" if is_rule else "correlation",
        title=item.title,
        description=item.description,
        level=item.level,
        status=item.status,
        provider=item.provider,
        streams=list(item.streams) if isinstance(item, CompiledRule) else [],
        tags=list(item.tags),
        mitre=list(alert.mitre) if alert else [],
        emits=item.emits,
        tests=len(item.tests),
        source=_shown_source(item.source, root),
    )


def list_rules(ctx: RequestContext, provider: str | None) -> list[RuleOut]:
    pack = shipped_pack(ctx)
    items: list[CompiledRule | CompiledCorrelation] = [*pack.rules, *pack.correlations]
    root = default_rules_path(ctx.settings)
    return [_rule_out(i, root) for i in items if provider is None or i.provider == provider]


def _bounded(text: str) -> None:
    """An input over the loader's limits (an alias bomb, absurd nesting) is refused with 422
    before anything walks it; a merely invalid rule is reported as a problem, as from a file."""
    try:
        loading.load_yaml(text, source="yaml", limits=RULE_LIMITS)
    except loading.LimitExceeded as exc:
        raise Unprocessable(str(exc)) from None
    except loading.LoadError:
        pass  # the pack loader reports it with its line


def _load_body(text: str) -> RulePack:
    """Load rules from text through the same loader as files (it reads files: write one)."""
    _bounded(text)
    with tempfile.TemporaryDirectory(prefix="tenantguard-rule-") as tmp:
        path = Path(tmp) / "body.yml"
        path.write_text(text, encoding="utf-8")
        pack = load_pack([path])
    for problem in pack.problems:
        object.__setattr__(problem, "path", "body")
    return pack


def _problems(pack: RulePack) -> list[RuleProblemOut]:
    return [RuleProblemOut(line=p.line, rule=p.rule, reason=p.reason) for p in pack.problems]


def _items(pack: RulePack) -> list[CompiledRule | CompiledCorrelation]:
    return [*pack.rules, *pack.correlations]


def _ids(pack: RulePack) -> list[str]:
    return [i.rule_id for i in _items(pack)]


def validate(body: RuleDocumentIn) -> ValidationOut:
    pack = _load_body(body.yaml)
    return ValidationOut(
        ok=not pack.problems and bool(_ids(pack)), rules=_ids(pack), problems=_problems(pack)
    )


def _scrub(text: str) -> str:
    return text.replace(tempfile.gettempdir(), "…")


def test(body: RuleTestIn) -> RuleTestOut:
    pack = _load_body(body.yaml)
    outcomes = [
        TestOutcomeOut(
            rule_id=o.rule_id, test=o.test, passed=o.passed, details=[_scrub(d) for d in o.details]
        )
        for o in run_pack_tests(pack)
    ]
    for position, event in enumerate(body.events):
        try:
            loading.check_data(event.data, source=f"events[{position}].data", limits=RULE_LIMITS)
        except loading.LimitExceeded as exc:
            raise Unprocessable(str(exc)) from None
    if body.events:
        events = tuple(TestEvent(e.provider.value, e.stream, e.data) for e in body.events)
        probe = RuleTest(name="events from the request", expect_match=True, events=events)
        for item in _items(pack):
            outcome = run_test(pack, item, probe)
            outcomes.append(
                TestOutcomeOut(
                    rule_id=item.rule_id,
                    test=probe.name,
                    passed=outcome.passed,
                    details=[_scrub(d) for d in outcome.details],
                )
            )
    ok = not pack.problems and bool(_ids(pack)) and all(o.passed for o in outcomes)
    return RuleTestOut(ok=ok, rules=_ids(pack), problems=_problems(pack), outcomes=outcomes)


# ---- suppressions (detectors.suppressions is the write path; the API adds its own audit record) ----


def list_suppressions(session: Session, include_expired: bool) -> list[SuppressionOut]:
    rows = suppressions.list_suppressions(session, include_expired=include_expired)
    return [SuppressionOut.model_validate(r) for r in rows]


def get_suppression(session: Session, suppression_id: int) -> Suppression:
    row = session.get(Suppression, suppression_id)
    if row is None:
        raise NotFound(f"suppression {suppression_id} does not exist")
    return row


def create_suppression(ctx: RequestContext, body: SuppressionIn) -> SuppressionOut:
    pack = shipped_pack(ctx)
    with ctx.db.session() as session:
        row = suppressions.create_suppression(
            session,
            rule_id=body.rule_id,
            match=body.match,
            reason=body.reason,
            actor=ctx.actor,
            expires_at=body.expires_at,
            pack=pack,
        )
        return SuppressionOut.model_validate(row)


def delete_suppression(ctx: RequestContext, suppression_id: int) -> None:
    with ctx.db.session() as session:
        get_suppression(session, suppression_id)
        suppressions.remove_suppression(session, suppression_id, actor=ctx.actor)
