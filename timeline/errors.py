"""The timeline package's errors: each names the input at fault and what to do about it."""

from __future__ import annotations

from core.errors import TenantguardError


class TimelineError(TenantguardError):
    """Base of every error the timeline package raises on purpose."""


class InvalidTransitionError(TimelineError):
    """The lifecycle does not allow moving the incident from its current status to the one asked for."""


class MergeError(TimelineError):
    """A merge or split request does not make sense (same incident, unknown findings, ...)."""


class ChangeWindowError(TimelineError):
    """A change window declaration does not make sense (no reference, end before start, too long ...)."""
