"""The Okta actions against the simulator over real HTTP: each inspects, applies, verifies by
reading back, and the simulator records exactly the change it made."""

from __future__ import annotations

from typing import Any

from collectors import connections_from_simulator
from core.models import Connection
from providers.calls import CallLog
from providers.credentials import Secrets
from providers.okta import open_gateway
from remediation.catalogue import get_action


def _gateway(sim: Any) -> Any:
    definition = connections_from_simulator(sim.info, providers=["okta"])[0]
    connection = Connection(
        name=definition.name,
        provider="okta",
        tenant=definition.tenant,
        config=definition.config,
        secret_refs=definition.secrets,
    )
    return open_gateway(connection, Secrets(definition.secrets), CallLog())


def _run(gw: Any, name: str, target: dict[str, Any]) -> Any:
    operation = get_action(name).operation
    before = operation.inspect(gw, target, {})
    assert not operation.satisfied(before, {})
    operation.apply(gw, target, {}, before)
    return operation.verify(gw, target, {}, before)


def test_the_okta_story_is_evicted_by_the_catalogue_actions(make_simulator: Any) -> None:
    sim = make_simulator("okta_mfa_fatigue", users=12, days=2)
    truth = sim.truth["stories"][0]
    victim = next(r for r in truth["remediation"] if r["action"] == "okta.suspend_user")["target"]["user"]
    role = next(r for r in truth["remediation"] if r["action"] == "okta.remove_admin_role")["target"]
    gw = _gateway(sim)
    for name, target in (
        ("okta.clear_sessions", {"user": victim}),
        ("okta.suspend_user", {"user": victim}),
        ("okta.reset_factors", {"user": victim}),
        ("okta.remove_admin_role", {"user": role["user"], "role_id": role["role_id"]}),
    ):
        assert _run(gw, name, target).ok, name
    assert [c["action"] for c in sim.changes] == [
        "clear_sessions",
        "suspend_user",
        "reset_factors",
        "remove_admin_role",
    ]
    # and the suspension rolls back through its inverse
    assert _run(gw, "okta.unsuspend_user", {"user": victim}).ok
