"""The command line as an operator meets it: real processes, real files, real databases.

A missing database is an error (only `db upgrade`, `serve`, `worker`, `demo` create one), every
error is one literal line without a traceback, filters refuse values that match nothing, times
are read one way everywhere, and every list/show speaks JSON (lists CSV too)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_process import run_cli


def tenantguard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env={**os.environ, "COLUMNS": "200", **env})


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def fresh(tmp_path: Path) -> dict[str, str]:
    """An installation where nothing has been created yet."""
    return {"TENANTGUARD_DATA_DIR": str(tmp_path / "data"), "TENANTGUARD_DATABASE_URL": ""}


@pytest.fixture
def installed(database_url: str, tmp_path: Path) -> dict[str, str]:
    """An installation whose database exists and is migrated (the suite's SQLite or PostgreSQL)."""
    return {"TENANTGUARD_DATA_DIR": str(tmp_path / "data"), "TENANTGUARD_DATABASE_URL": database_url}


def test_a_missing_database_is_an_error_until_db_upgrade_creates_it(
    fresh: dict[str, str], tmp_path: Path
) -> None:
    # Given nothing installed, when the operator lists incidents
    listed = tenantguard("incidents", "list", env=fresh)
    # Then it says there is no database and how to make one, and creates nothing
    err = one_clear_line(listed)
    assert "no tenantguard database at" in err and "tenantguard db upgrade" in err
    assert not (tmp_path / "data" / "tenantguard.db").exists()
    # When the operator creates it on purpose, the same command answers
    assert tenantguard("db", "upgrade", env=fresh).returncode == 0
    listed = tenantguard("incidents", "list", "--json", env=fresh)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_an_empty_file_where_the_database_should_be_is_not_a_database(
    fresh: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tenantguard.db").touch()
    err = one_clear_line(tenantguard("posture", env=fresh))
    assert "holds no tenantguard schema" in err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://user@db.example/tg", "names 'mysql'"),
        ("not a url", "'not a url' is not a URL"),
        ("postgresql+psycopg2://u@127.0.0.1/x", "driver 'postgresql+psycopg2' is not installed"),
    ],
)
def test_a_bad_database_url_names_the_url_and_the_forms_that_work(
    fresh: dict[str, str], url: str, expected: str
) -> None:
    err = one_clear_line(tenantguard("db", "upgrade", env={**fresh, "TENANTGUARD_DATABASE_URL": url}))
    assert expected in err and "postgresql://USER" in err


def test_a_file_where_the_data_directory_should_be_is_named(tmp_path: Path, fresh: dict[str, str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    err = one_clear_line(
        tenantguard("db", "upgrade", env={**fresh, "TENANTGUARD_DATA_DIR": str(blocker / "sub")})
    )
    assert "cannot create the data directory" in err and str(blocker / "sub") in err


def test_error_text_is_printed_literally(tmp_path: Path) -> None:
    where = tmp_path / "[secrets]"
    err = one_clear_line(
        tenantguard(
            "incidents", "list", env={"TENANTGUARD_DATA_DIR": str(where), "TENANTGUARD_DATABASE_URL": ""}
        )
    )
    assert "[secrets]" in err.replace("\n", "")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["incidents", "list", "-p", "P7"], "'P7' is not one of P1, P2, P3, P4"),
        (["incidents", "list", "-s", "open"], "'open' is not one of new, triaged, contained"),
    ],
)
def test_a_filter_value_that_matches_nothing_is_refused(
    installed: dict[str, str], args: list[str], named: str
) -> None:
    err = one_clear_line(tenantguard(*args, env=installed))
    assert named in " ".join(err.split())


@pytest.mark.parametrize("since", ["7d", "yesterday", "2026-01-01", "2026-01-01T00:00:00Z", "today"])
def test_every_time_form_is_read_by_audit_export(installed: dict[str, str], since: str) -> None:
    exported = tenantguard("audit", "export", "--since", since, env=installed)
    assert exported.returncode == 0, exported.stderr


def test_a_time_that_is_not_one_says_which_forms_are(installed: dict[str, str]) -> None:
    err = one_clear_line(tenantguard("audit", "export", "--since", "last tuesday", env=installed))
    flat = " ".join(err.split())
    assert "'last tuesday' is not a time" in flat and "yesterday" in flat and "7d" in flat
    assert "ValueError" not in err


def test_lists_and_shows_speak_json_and_csv(
    installed: dict[str, str], make_incident: Callable[..., Any], make_connection: Callable[..., Any]
) -> None:
    # Given two incidents and a connection
    first = make_incident("Impossible travel [alice]", priority="P1")
    make_incident("Forwarding rule", priority="P3")
    make_connection()
    # When they are listed as JSON, filtered by priority (any case)
    listed = tenantguard("incidents", "list", "-p", "p1", "--json", env=installed)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [first.id] and rows[0]["title"] == "Impossible travel [alice]"
    # As CSV: a header and one row per incident
    as_csv = list(
        csv.DictReader(io.StringIO(tenantguard("incidents", "list", "--output", "csv", env=installed).stdout))
    )
    assert {r["priority"] for r in as_csv} == {"P1", "P3"}
    # The table shows the bracketed title as written
    table = tenantguard("incidents", "list", env=installed).stdout
    assert "Impossible travel [alice]" in table
    # One incident as JSON, and its report
    shown = json.loads(tenantguard("incidents", "show", str(first.id), "--json", env=installed).stdout)
    assert shown["id"] == first.id and shown["priority"] == "P1" and "timeline" in shown
    report = tenantguard("report", "incident", str(first.id), "-f", "json", env=installed)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["incident"]["id"] == first.id
    # Every other list answers JSON a script can read
    for args in (
        ["connections", "list"],
        ["principals", "list"],
        ["suppressions", "list"],
        ["identities", "list"],
        ["posture", "--no-evaluate"],
    ):
        result = tenantguard(*args, "--json", env=installed)
        assert result.returncode == 0, (args, result.stderr)
        assert isinstance(json.loads(result.stdout), list), args
    connections = json.loads(tenantguard("connections", "list", "--json", env=installed).stdout)
    assert connections and "secrets" in connections[0] and "health" in connections[0]


def test_shell_completion_is_offered(fresh: dict[str, str]) -> None:
    helped = tenantguard("--help", env=fresh)
    assert helped.returncode == 0 and "--install-completion" in helped.stdout


def test_version_answers(fresh: dict[str, str]) -> None:
    result = tenantguard("version", env=fresh)
    assert result.returncode == 0 and result.stdout.startswith("tenantguard ")
