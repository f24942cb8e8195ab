"""Posture over HTTP: scores, the checks with their latest results, score history and drift."""
