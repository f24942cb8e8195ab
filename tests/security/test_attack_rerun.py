"""The outside review's attacks re-run against a real `tenantguard serve` (bench/attacks.py, quick
form): no 5xx, no hang and only the promised refusals, for every attack and for a sweep of every
operation in the OpenAPI document by every role and no token — so an endpoint added later is
swept too."""

from __future__ import annotations

import pytest

from bench.attacks import run_attacks


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_outside_reviews_attacks_all_fail_against_a_running_serve() -> None:
    tallies = run_attacks(quick=True)
    sweep = next(t for t in tallies if t.name.startswith("every operation"))
    assert sweep.attempts > 500  # every operation x 5 roles + anonymous
    failed = {t.name: (t.server_errors, t.hangs, t.unexpected[:5]) for t in tallies if t.failures}
    assert not failed, failed
