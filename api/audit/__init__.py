"""The audit trail over HTTP: streamed exports (JSONL, CSV) and verification of the chain or an export."""
