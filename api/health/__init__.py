"""Liveness and readiness (`/health`) and Prometheus exposition (`/metrics`)."""
