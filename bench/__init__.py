"""Benchmarks (not tests): each module measures a figure next to a baseline taken in the same run."""

import os
import tempfile

# One encryption key file (core.crypto) for a benchmark run, as one installation has: the databases
# a benchmark opens by URL alone and the serve/worker processes it starts (each with its own data
# directory) must read each other's encrypted rows. An operator's own setting wins.
if not os.environ.get("TENANTGUARD_ENCRYPTION_KEY_FILE"):
    os.environ["TENANTGUARD_ENCRYPTION_KEY_FILE"] = os.path.join(
        tempfile.mkdtemp(prefix="tenantguard-bench-keys-"), "encryption.key"
    )
