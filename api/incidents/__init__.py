"""Incidents: list, detail, and (as the timeline and remediation stages provide them) their lifecycle."""
