"""Errors of the posture package: each names the check file (and line) or expression at fault."""

from __future__ import annotations

from core.errors import TenantguardError


class PostureError(TenantguardError):
    """Base of every posture error."""


class ExpressionError(PostureError):
    """A posture condition uses syntax or a function the expression language does not accept."""


class CheckError(PostureError):
    """A posture check file is not valid; the message names the file, the line and the field."""
