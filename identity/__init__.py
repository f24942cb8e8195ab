"""One person across many SaaS accounts: resolution, explained risk scores, and who can access what.

Entry points: :func:`resolve_people` (Person/Account rows from user snapshots), :func:`score_people`
(risk as weighted factors, and the ``identity`` findings they call for; :func:`review_people`
reports those too), :func:`who_can_access` / :func:`what_can_access`.
"""

from identity.access import Grant, what_can_access, who_can_access
from identity.resolve import ResolutionReport, resolve_people
from identity.risk import WEIGHTS, IdentityReview, RiskFactor, review_people, score_people

__all__ = [
    "WEIGHTS",
    "Grant",
    "IdentityReview",
    "ResolutionReport",
    "RiskFactor",
    "resolve_people",
    "review_people",
    "score_people",
    "what_can_access",
    "who_can_access",
]
