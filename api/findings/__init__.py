"""Findings: list with filters, sorting and cursor pagination; detail with evidence."""
