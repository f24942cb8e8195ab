"""API principals: who may call the API, with which role; tokens shown once and kept only as hashes."""
