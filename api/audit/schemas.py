"""Shapes for audit export and verification."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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
    start_seq: int | None = Field(default=None, description="The first record's seq.")
    end_seq: int | None = Field(default=None, description="The last record's seq.")
    signed: bool = Field(
        default=False, description="The export's signed head (the live chain: its checkpoints) verified."
    )
    signed_by: list[str] = Field(
        default_factory=list, description="Fingerprints of the signing keys checked."
    )
    checkpoints: int = Field(default=0, description="Signed checkpoints found in the chain and checked.")
    notes: list[str] = Field(default_factory=list)
