"""Remediation: the write side — action catalogue, playbooks, planner, four-eyes approvals,
execution with verification, and rollback (see remediation/README.md).

Public entry points (what the API, CLI and demo call):

- ``plan_for_incident(db, incident_id, requested_by) -> Plan``, ``get_plan(db, incident_id)``,
  ``add_step(db, incident_id, action, target, params, requested_by=..., reason=...)``
- ``approve(db, action_id, principal, ...)``, ``reject(db, action_id, principal, ...)``
- ``execute(db, settings, incident_id | action_ids=[...], dry_run=False) -> ExecutionReport``
- ``rollback(db, settings, action_id | incident_id=..., principal=...) -> ExecutionReport``
- ``handle_interaction(db, body, headers)`` for Slack interactive approvals
- ``demo_flow(db, settings, incident_id, requested_by=..., approve_as=...)``
"""

from remediation.approvals import DecisionOutcome, approve, reject
from remediation.catalogue import ActionSpec, BlastRadius, Phase, Risk, all_actions, get_action
from remediation.demo import DemoResult, demo_flow
from remediation.errors import Refused, RemediationError
from remediation.executor import ExecutionReport, Outcome, StepResult, execute, rollback
from remediation.planner import Plan, PlanStep, add_step, get_plan, plan_for_incident
from remediation.slack_approvals import InteractionResult, approval_blocks, handle_interaction

__all__ = [
    "ActionSpec",
    "add_step",
    "BlastRadius",
    "DecisionOutcome",
    "DemoResult",
    "ExecutionReport",
    "InteractionResult",
    "Outcome",
    "Phase",
    "Plan",
    "PlanStep",
    "Refused",
    "RemediationError",
    "Risk",
    "StepResult",
    "all_actions",
    "approval_blocks",
    "approve",
    "demo_flow",
    "execute",
    "get_action",
    "get_plan",
    "handle_interaction",
    "plan_for_incident",
    "reject",
    "rollback",
]
