"""The catalogue, playbooks and policy are data checked on load; mistakes name the file and the fix."""

from __future__ import annotations

import pytest

from remediation import all_actions, get_action
from remediation.catalogue import BlastRadius
from remediation.errors import CatalogueError, PlaybookError, PolicyError
from remediation.playbooks import Unbound, fill, parse_playbook
from remediation.policy import parse_policy

REQUIRED = {
    "m365": {
        "revoke_sessions",
        "disable_account",
        "enable_account",
        "confirm_compromised",
        "dismiss_risk",
        "remove_drive_permission",
        "revoke_oauth_grant",
        "remove_inbox_rule",
        "restore_ca_policy",
        "restore_security_defaults",
    },
    "google": {
        "suspend_user",
        "unsuspend_user",
        "sign_out",
        "revoke_token",
        "remove_drive_permission",
        "force_password_change",
    },
    "slack": {"reset_sessions", "deactivate_user", "revoke_public_url"},
}


def test_the_catalogue_covers_the_required_actions_per_provider():
    names = {a.name for a in all_actions()}
    for provider, actions in REQUIRED.items():
        assert {f"{provider}.{a}" for a in actions} <= names


def test_every_action_declares_what_an_approver_needs_to_know():
    for spec in all_actions():
        described = spec.describe()
        assert described["permission"] and described["verification"] and described["title"]
        assert spec.blast_radius in BlastRadius
        assert set(spec.idempotency_fields) <= {f.name for f in spec.target}
        if spec.inverse:
            assert get_action(spec.inverse).provider == spec.provider
            assert spec.reversible


def test_an_unknown_action_or_a_target_it_does_not_accept_is_refused():
    with pytest.raises(CatalogueError, match="unknown action"):
        get_action("m365.delete_tenant")
    with pytest.raises(CatalogueError, match="needs target field"):
        get_action("m365.disable_account").check_target({}, {})
    with pytest.raises(CatalogueError, match="does not accept"):
        get_action("m365.disable_account").check_target({"user": "a@b", "colour": "red"}, {})


def test_a_playbook_with_a_mistake_is_refused_with_where_and_why():
    good_step = {
        "action": "m365.revoke_sessions",
        "phase": "contain",
        "target": {"user": "{person}"},
        "why": "because",
    }
    with pytest.raises(PlaybookError, match="phase 'later'"):
        parse_playbook(
            {"id": "x", "match": [{"kind": "anomaly"}], "steps": [{**good_step, "phase": "later"}]}, "x.yaml"
        )
    with pytest.raises(PlaybookError, match="say why"):
        parse_playbook(
            {"id": "x", "match": [{"kind": "anomaly"}], "steps": [{**good_step, "why": ""}]}, "x.yaml"
        )
    with pytest.raises(PlaybookError, match="does not accept colour"):
        parse_playbook(
            {
                "id": "x",
                "match": [{"kind": "anomaly"}],
                "steps": [{**good_step, "target": {"colour": "red"}}],
            },
            "x.yaml",
        )
    with pytest.raises(PlaybookError, match="unknown match key"):
        parse_playbook({"id": "x", "match": [{"flavour": "x"}], "steps": [good_step]}, "x.yaml")
    with pytest.raises(PlaybookError, match="only used to roll back"):
        parse_playbook(
            {
                "id": "x",
                "match": [{"kind": "anomaly"}],
                "steps": [{**good_step, "action": "m365.restore_inbox_rule"}],
            },
            "x.yaml",
        )


def test_templates_keep_types_and_take_the_first_alternative_that_has_a_value():
    variables = {"context": {"doc_id": None, "settings": {"a": 1}}, "file": "F1", "person": "a@b.example"}
    assert fill("{context.settings}", variables) == {"a": 1}
    assert fill("{context.doc_id|file}", variables) == "F1"
    assert fill("owner {person}", variables) == "owner a@b.example"
    with pytest.raises(Unbound):
        fill("{context.missing}", variables)


def test_the_policy_refuses_auto_approval_of_irreversible_or_wide_actions():
    with pytest.raises(PolicyError, match="cannot be auto-approved"):
        parse_policy({"auto_approve": [{"action": "m365.remove_auth_method"}]})
    with pytest.raises(PolicyError, match="cannot be auto-approved"):
        parse_policy({"auto_approve": [{"action": "m365.restore_security_defaults"}]})
    with pytest.raises(PolicyError, match="not a duration"):
        parse_policy({"approval_ttl": "soon"})
    with pytest.raises(PolicyError, match="approver_roles is no longer part of the approval policy"):
        parse_policy({"approver_roles": ["approver"]})


def test_the_policy_counts_approvers_by_blast_radius_and_risk():
    policy = parse_policy(
        {"approvals": {"default": 1, "by_blast_radius": {"tenant": 2}, "by_risk": {"high": 3}}}
    )
    assert policy.approvals_required("single_user", "low") == 1
    assert policy.approvals_required("tenant", "medium") == 2
    assert policy.approvals_required("tenant", "high") == 3
