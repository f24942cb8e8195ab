"""People and rules: who is risky and why, what each person can reach, and what the detections cover.

People come from the identity stage (api.identities.service: risk score, factors, accounts, the
files and apps a person can access); rules from the loaded Sigma pack (api.rules.service), with
coverage by provider and MITRE technique, and the active suppressions.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from api.identities import service as identities_service
from api.identities.schemas import PersonSort
from api.rules import service as rules_service
from console.charts import bar_chart
from console.web import ConsolePage, render, signed_in
from core.pagination import MAX_ID
from core.permissions import Permission

router = APIRouter(prefix="/console", include_in_schema=False)
PEOPLE_LIMIT = 200


@router.get("/people")
def people(page: Annotated[ConsolePage, Depends(signed_in(Permission.IDENTITIES_READ))]) -> Response:
    with page.ctx.db.session(readonly=True) as session:
        rows, _ = identities_service.list_people(
            session, risk_level=None, sort=PersonSort.RISKIEST, limit=PEOPLE_LIMIT, cursor=None
        )
    return render(page, page.request, "people.html.j2", people=rows)


@router.get("/people/{person_id}")
def person(
    page: Annotated[ConsolePage, Depends(signed_in(Permission.IDENTITIES_READ))],
    person_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    with page.ctx.db.session(readonly=True) as session:
        detail = identities_service.person_detail(session, person_id)
    grants = identities_service.access_of_person(page.ctx, person_id)
    return render(page, page.request, "person.html.j2", person=detail, grants=grants)


@router.get("/rules")
def rules(page: Annotated[ConsolePage, Depends(signed_in(Permission.RULES_READ))]) -> Response:
    loaded = rules_service.list_rules(page.ctx, None)
    by_provider = Counter(r.provider or "any" for r in loaded if r.emits)
    techniques = Counter(t for r in loaded for t in r.mitre)
    with page.ctx.db.session(readonly=True) as session:
        suppressions = rules_service.list_suppressions(session, include_expired=False)
    return render(
        page,
        page.request,
        "rules.html.j2",
        rules=loaded,
        coverage=bar_chart("Detection rules by provider", sorted(by_provider.items())),
        techniques=len(techniques),
        untested=[r.rule_id for r in loaded if r.tests == 0],
        suppressions=suppressions,
    )
