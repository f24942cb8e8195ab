"""What can go wrong in remediation, one class per cause, so callers branch on the type, never the text.

:class:`Refused` and its subclasses are refusals: the request was understood and deliberately
not carried out (and an audit record says so). The API maps them to 403/409; the CLI prints them.
"""

from __future__ import annotations

from core.errors import TenantguardError


class RemediationError(TenantguardError):
    """Base of every error raised by the remediation package."""


class CatalogueError(RemediationError):
    """An unknown action name, or a target/parameter the action does not accept."""


class PlaybookError(RemediationError):
    """A playbook file is invalid (the message names the file and the entry)."""


class PolicyError(RemediationError):
    """The approval policy file is invalid."""


class ActionNotFound(RemediationError):
    """No remediation action with that id."""


class ConnectionUnavailable(RemediationError):
    """No usable connection to run a step through (none configured, disabled, or clients missing)."""


class Refused(RemediationError):
    """A request deliberately not carried out; the reason is audited. `code` is stable for APIs."""

    code = "refused"


class NotAllowed(Refused):
    """The principal is unknown, disabled, or lacks the role the request needs."""

    code = "not_allowed"


class SelfApproval(Refused):
    """The requester of an action tried to approve it (four eyes)."""

    code = "self_approval"


class AlreadyDecided(Refused):
    """The principal already decided on this action, or the action is past the point of deciding."""

    code = "already_decided"


class InvalidState(Refused):
    """The action is in a state where this request makes no sense (e.g. approving an executed step)."""

    code = "invalid_state"


class ApprovalInvalid(Refused):
    """The approvals are not enough, expired, or were given on a different version of the step."""

    code = "approval_invalid"


class StaleStep(Refused):
    """The step changed between the approver seeing it and deciding (another fingerprint or version)."""

    code = "stale_step"


class TargetMissing(Refused):
    """The target does not exist (unknown, or already removed): nothing to act on."""

    code = "target_missing"


class SlackRequestRejected(Refused):
    """A Slack interaction whose signature, timestamp or payload does not check out, or a replay."""

    code = "slack_request_rejected"
