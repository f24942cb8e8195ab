"""Connections: connected tenants, their health per stream, last runs and errors."""
