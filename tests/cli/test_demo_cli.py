"""`tenantguard demo` as a person runs it: short output that says where to look next, and a
database that stays usable afterwards (its simulator secrets are files in the demo's data dir;
with --keep-simulator, `connections test` passes against it from another process)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
CLI = [sys.executable, "-c", "from cli.main import run; run()"]


def test_the_demo_is_short_and_leaves_a_database_that_works(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TENANTGUARD_DATA_DIR": str(tmp_path),
        "TENANTGUARD_DATABASE_URL": "",
        "COLUMNS": "160",
        "PYTHONFAULTHANDLER": "1",  # SIGABRT dumps every thread's stack (see _finish)
    }
    demo = subprocess.Popen(
        [*CLI, "demo", "-s", "account_takeover", "--users", "30", "--days", "3", "--keep-simulator"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    try:
        for line in demo.stdout:  # until the demo says its simulator is kept up
            lines.append(line)
            if line.startswith("simulator still serving"):
                break
        else:
            pytest.fail("the demo ended without keeping its simulator:\n" + "".join(lines))
        text = "".join(lines)
        # Then the output is a few lines, naming the P1 and the commands to look at it
        assert len(lines) < 80, text
        assert "✓ collected" in text and "findings:" in text and "P1 #" in text
        # And it says how the incidents compare with the simulator's ground truth (issue 17's figures)
        assert (
            "against the simulator's ground truth: 1 of 1 stories one P1/P2 incident, 0 split / 0 merged"
            in text
        ), text
        data_dir = tmp_path / "demo" / "account_takeover"
        assert f"TENANTGUARD_DATA_DIR={data_dir} tenantguard incidents show" in text
        # And the simulator's secrets are owner-only files in the scenario's data dir
        secrets = sorted((data_dir / "connections.secrets").iterdir())
        assert secrets and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets)
        # And another process can test the connections against the kept simulator
        scenario_env = {**env, "TENANTGUARD_DATA_DIR": str(data_dir)}
        tested = subprocess.run(
            [*CLI, "connections", "test", "--json"],
            capture_output=True,
            text=True,
            env=scenario_env,
            timeout=300,
        )
        checks = json.loads(tested.stdout)
        assert {c["provider"] for c in checks} >= {"m365", "google", "slack"}
        assert all(not c["secrets_missing"] for c in checks), checks
        assert tested.returncode == 0, tested.stdout
        # When the operator presses Ctrl-C, the demo finishes with its summary
        demo.send_signal(signal.SIGINT)
        rest = _finish(demo)
        assert demo.returncode == 0, rest
        assert "Demo summary" in rest
        listed = subprocess.run(
            [*CLI, "incidents", "list", "-p", "P1", "--json"],
            capture_output=True,
            text=True,
            env=scenario_env,
        )
        assert listed.returncode == 0 and len(json.loads(listed.stdout)) >= 1
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def _finish(demo: subprocess.Popen[str]) -> str:
    """The demo's output after Ctrl-C; if it does not end within 120 s, fail with where each of
    its threads stood (faulthandler's dump on SIGABRT), not a bare timeout."""
    try:
        rest, _ = demo.communicate(timeout=120)
        return rest
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGABRT)
        dumped, _ = demo.communicate(timeout=60)
        pytest.fail("the demo did not end within 120 s of Ctrl-C; its threads:\n" + dumped[-8000:])
