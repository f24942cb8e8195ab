"""The response package's errors: each names the input at fault and what to do about it."""

from __future__ import annotations

from core.errors import TenantguardError


class ResponseError(TenantguardError):
    """Something in the response flow could not be done."""


class ResponseConfigError(ResponseError):
    """The response configuration file is invalid (the message names file, line and field)."""


class ResponseInputError(ResponseError, ValueError):
    """A request to the response flow is invalid (bad audience, unknown incident, ...)."""


class AlertRefused(ResponseError):
    """An inbound alert was refused: bad signature, stale, or not an alert."""


class ChannelError(ResponseError):
    """Slack refused or could not be reached while working on an incident channel."""


class TicketError(ResponseError):
    """Jira refused or could not be reached."""
