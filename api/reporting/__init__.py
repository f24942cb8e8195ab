"""Operational metrics over HTTP: MTTD, MTTA, MTTC, MTTR, SLA compliance (timeline stage)."""
