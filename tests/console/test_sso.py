"""Single sign-on into the console: OIDC authorization code with PKCE against a loopback issuer.

Given serve configured with an issuer and a client id, when a person chooses "Sign in with single
sign-on" and picks themselves at the issuer, then they are signed in with the roles the ID token
names (and only those); a callback that this browser did not start is refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import ConsoleServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_a_person_signs_in_through_the_identity_provider_with_pkce(
    console: ConsoleServer, new_page: Any
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    page.goto("/console/login?next=/console/posture")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    expect(page.get_by_role("heading", name="Who are you?")).to_be_visible()
    page.get_by_role("link", name="olivia").click()
    expect(page.get_by_test_id("who")).to_have_text("olivia (analyst)")
    expect(page.get_by_role("heading", level=1)).to_have_text("Posture")
    assert console.idp.refused == []
    # the roles are the ID token's: an analyst may triage but not export the audit trail
    response = page.goto("/console/audit")
    assert response is not None and response.status == 403


def test_a_callback_this_browser_did_not_start_is_refused(console: ConsoleServer, new_page: Any) -> None:
    from playwright.sync_api import expect

    page = new_page()
    response = page.goto("/console/oidc/callback?code=stolen&state=guessed")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("not started here")
    response = page.goto("/console/incidents")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
