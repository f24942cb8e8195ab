"""The browser suite: the real `tenantguard serve` process, a simulator-populated database, Chromium.

``console`` (module scope) starts two simulator tenants (an account takeover, whose OpenID
provider at ``/oidc`` is the console's single sign-on, and an admin privilege abuse), runs the
cycle once in this process (collect, detect, posture, identity, incidents), creates one principal
per role, then starts `tenantguard serve --no-scheduler` against that database and waits for /health.
``browser`` is Debian's Chromium driven by Playwright through its executable path (no browser
download); each test opens its own context (``new_page``), so sessions never leak between tests.

Without Chromium (or Playwright) the tests are skipped with one plain message; with
TENANTGUARD_REQUIRE_BROWSER=1 (CI) that is a failure instead. Every wait is on a condition
(Playwright's auto-waiting `expect`, /health answering), with generous limits for a loaded machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.audit import Actor
from core.db import Database
from core.settings import Settings
from simulator.http import free_port
from tests.cli_process import ForkedProcess, popen_cli
from tests.factories import TEST_PEPPER, make_principal

CHROMIUM = os.environ.get("TENANTGUARD_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("TENANTGUARD_REQUIRE_BROWSER") == "1"
ROLES = ("viewer", "analyst", "approver", "auditor", "compliance_officer", "admin")
SSO_CLIENT_ID = "tenantguard-console"
SSO_PEOPLE = {"olivia": ["analyst"], "quinn": ["viewer"]}  # the test issuer's people and their roles
WAIT_MS = 60_000  # what `expect` allows a condition on a loaded machine
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def browser_problem() -> str | None:
    """Why the browser suite cannot run here, or None."""
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set TENANTGUARD_TEST_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    problem = browser_problem()
    if problem is not None:
        message = f"browser suite SKIPPED: {problem}"
        if REQUIRE:
            pytest.fail(message + " — and TENANTGUARD_REQUIRE_BROWSER=1 demands it", pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@dataclass
class ConsoleServer:
    base_url: str
    db: Database
    simulator: Any
    tokens: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    idp: Any = None

    def api(self, method: str, path: str, role: str, body: bytes | None = None) -> Any:
        """A call to the JSON API with a role's token (to change things behind a browser's back)."""
        import orjson

        request = urllib.request.Request(
            self.base_url + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.tokens[role]}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return orjson.loads(response.read())


def _wait_healthy(url: str, server: ForkedProcess, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, f"serve exited ({server.returncode}):\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"serve never answered /health:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)  # polling a starting process, not synchronising with it


@pytest.fixture(scope="module")
def console(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    from collectors import connections_from_simulator
    from collectors.connections import sync_connections
    from pipeline.cycle import run_cycle
    from simulator.handle import start

    tmp = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{tmp / 'tenantguard.db'}"
    settings = Settings(data_dir=tmp / "data", database_url=url)
    db = Database.from_settings(settings)
    db.upgrade()
    simulator = start("account_takeover", users=20, days=2)
    second = start("admin_privilege_abuse", users=15, days=2)
    idp = simulator.oidc  # the first simulator's OpenID provider (simulator/oidc.py) is the console's SSO
    idp.set_people(SSO_PEOPLE)
    try:
        definitions = connections_from_simulator(simulator.info) + connections_from_simulator(
            second.info, name_prefix="sim2", env_prefix="TG_CONSOLE_SIM2_"
        )
        sync_connections(db, definitions, actor=Actor.cli("principal:test"))
        run_cycle(db, settings, notify=False)
        tokens = {role: make_principal(db, role, name=f"{role}-1").token for role in ROLES}
        tokens["analyst-2"] = make_principal(db, "analyst", name="analyst-2").token
        tokens["approver-2"] = make_principal(db, "approver", name="approver-2").token
        tokens["compliance_officer-2"] = make_principal(
            db, "compliance_officer", name="compliance_officer-2"
        ).token
        port = free_port()
        env = dict(
            os.environ,
            TENANTGUARD_DATA_DIR=str(settings.data_dir),
            TENANTGUARD_DATABASE_URL=url,
            TENANTGUARD_API_TOKEN_PEPPER=TEST_PEPPER,
            TENANTGUARD_API_RATE_LIMIT_PER_SECOND="0",
            TENANTGUARD_API_AUTH_FAILURES_PER_MINUTE="100000",
            TENANTGUARD_API_OIDC_ISSUER=simulator.info["oidc.issuer"],
            TENANTGUARD_API_OIDC_CLIENT_ID=SSO_CLIENT_ID,
            # shown on the compliance pages (serve runs without the scheduler: nothing is deleted)
            TENANTGUARD_RETENTION_MESSAGES="400d",
            TENANTGUARD_RETENTION_INCIDENTS="730d",
        )
        log = tmp / "serve.log"
        with log.open("wb") as out:
            server = popen_cli(
                ["serve", "--no-scheduler", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(base, server, log)
            yield ConsoleServer(base_url=base, db=db, simulator=simulator, tokens=tokens, log=log, idp=idp)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    finally:
        simulator.stop()
        second.stop()
        db.dispose()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Any, console: ConsoleServer) -> Iterator[Callable[..., Any]]:
    """A page in a fresh browser context (its own cookies): ``new_page(width=1280, height=900)``."""
    contexts: list[Any] = []

    def make(width: int = 1280, height: int = 900, **options: Any) -> Any:
        context = browser.new_context(
            base_url=console.base_url, viewport={"width": width, "height": height}, **options
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, console: ConsoleServer, role: str) -> None:
    """Sign in through the form, as a person would, and wait for the queue."""
    from playwright.sync_api import expect

    page.goto("/console/login")
    page.get_by_label("API token").fill(console.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("who")).to_contain_text(role.rsplit("-", 1)[0] if role[-1].isdigit() else role)


def shoot(page: Any, name: str) -> None:
    """With TENANTGUARD_TEST_SCREENSHOTS=DIR, save the page there as NAME.png (docs/console/)."""
    directory = os.environ.get("TENANTGUARD_TEST_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)


def post_behind_the_form(page: Any, path: str, form: dict[str, str]) -> Any:
    """POST to a console route with the session's own CSRF token, as a hand-made request would: what
    the server answers when the page shows no button (a role that may not)."""
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    return page.request.post(path, form={"csrf": token or "", **form}, max_redirects=0)


def axe_violations(page: Any) -> str:
    """axe-core's report of WCAG 2.1 A/AA violations on the page, or "" when there are none."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG)
    return "" if results.violations_count == 0 else results.generate_report()
