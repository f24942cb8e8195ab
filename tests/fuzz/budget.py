"""The fuzzing budget: a fixed number of examples per target so CI stays fast and reproducible.

CI (the default) runs a derandomised, small budget. For a longer hunt set
``TENANTGUARD_FUZZ_EXAMPLES=5000`` (randomised, as `make chaos` does); hypothesis prints the
smallest failing input it finds.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_EXAMPLES = int(os.environ.get("TENANTGUARD_FUZZ_EXAMPLES", "0"))

settings.register_profile(
    "tenantguard-fuzz",
    max_examples=_EXAMPLES or 150,
    derandomize=not _EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("tenantguard-fuzz")
