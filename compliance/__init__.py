"""Compliance: framework catalogues, control mappings of checks and rules, framework reports, exceptions."""
