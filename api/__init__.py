"""The HTTP API: analysts, approvers and auditors reach findings, incidents, actions and the audit trail here.

`api.app.create_app(settings, db=None)` builds the FastAPI application. Each resource lives in its
own sub-package with the same few files (schemas -> service -> router); who may call what is
decided in exactly one place, :mod:`core.permissions`.
"""
