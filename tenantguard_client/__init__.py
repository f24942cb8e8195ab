"""A Python client for the tenantguard API: typed models, one exception, and iterators that walk
every page (``for incident in client.incidents(priority=["P1"])``). It imports nothing of the
product — only httpx and pydantic — so a script can use it against any tenantguard."""

from tenantguard_client.client import ApiError, Client
from tenantguard_client.models import Finding, Incident, IncidentDetail, Page, TimelineItem

__all__ = ["ApiError", "Client", "Finding", "Incident", "IncidentDetail", "Page", "TimelineItem"]
