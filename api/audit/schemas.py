"""Shapes for audit export and verification."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


class VerifyOut(BaseModel):
    """Whether the chain (or an export of it) is intact; if not, the first record that is wrong and why."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "records": 1204, "first_bad_seq": None, "reason": "", "head_hash": "9f2c…"},
                {
                    "ok": False,
                    "records": 16,
                    "first_bad_seq": 17,
                    "reason": "seq 17 was altered: its content does not match its hash",
                    "head_hash": None,
                },
            ]
        }
    )

    ok: bool
    records: int
    first_bad_seq: int | None
    reason: str
    head_hash: str | None
