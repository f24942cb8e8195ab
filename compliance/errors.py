"""Errors of the compliance package: each names the framework, file, control or exception at fault."""

from __future__ import annotations

from core.errors import TenantguardError


class ComplianceError(TenantguardError):
    """Base of every compliance error."""


class CatalogueError(ComplianceError):
    """A framework catalogue or a control mapping file is not valid (the message names file and entry)."""


class UnknownFrameworkError(ComplianceError):
    """A framework name that no catalogue has."""


class ExceptionError(ComplianceError):
    """A risk-acceptance exception that cannot be created or changed as asked."""


class ExceptionNotFoundError(ExceptionError):
    """No exception with that id."""


class ExceptionConflictError(ExceptionError):
    """The exception's state does not allow the change (already ended, not pending, own approval)."""


class NotPermittedError(ComplianceError):
    """The acting principal's role does not carry the permission the change needs."""


class HoldError(ComplianceError):
    """A legal hold that cannot be placed or released as asked."""


class HoldNotFoundError(HoldError):
    """No hold (or no incident) with that id."""


class HoldConflictError(HoldError):
    """Already on hold, or already released."""


class PrivacyError(ComplianceError):
    """A data-subject request that cannot be carried out as asked."""


class PrivacyNotFoundError(PrivacyError):
    """No erasure request with that id."""


class PrivacyConflictError(PrivacyError):
    """Blocked by a legal hold, already carried out, or approved by its own requester."""
