"""Findings become incidents: grouping, priority, conversations (redacted), lifecycle, metrics, reports."""
