"""Remediation over HTTP: an incident's plan, four-eyes decisions, execution and rollback (remediation stage)."""
