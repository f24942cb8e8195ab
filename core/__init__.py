"""Shared kernel."""
