"""Identities over HTTP: people across providers, their accounts, explained risk, and who can access what."""
