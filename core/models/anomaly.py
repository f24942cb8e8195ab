"""What the anomaly detectors learn and remember: per-person baselines, models, and cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import JSONType, UTCDateTime


class PersonBaseline(SQLModel, table=True):
    """One person's (actor's) habits over a window: countries, networks, devices, hours, volumes,
    as learned by one anomaly engine (`scope`: its cursor, one per tenant partition)."""

    __table_args__ = (UniqueConstraint("scope", "actor"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(default="anomaly", max_length=100)
    actor: str = Field(max_length=500)
    built_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    active_days: int = 0
    signins: int = 0
    countries: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    networks: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    devices: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    hours: list[int] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    volumes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    last_location: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))


class AnomalyModel(SQLModel, table=True):
    """A trained model: its parameters live in a numpy file under the data dir, pinned by SHA-256."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=50, index=True)
    trained_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    samples: int = 0
    features: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    path: str = Field(max_length=1000)
    sha256: str = Field(max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))


class AnalysisCursor(SQLModel, table=True):
    """How far a posture or anomaly pass has read (the highest Event/ConfigSnapshot id it has seen)."""

    name: str = Field(primary_key=True, max_length=100)
    # BIGINT: event ids and millisecond watermarks (the identity stage's) outgrow 32 bits.
    position: int = Field(default=0, sa_type=BigInteger)
    # Ids below `position` not seen yet (a writer still in flight, or a sequence value never used):
    # [[low, high, first_noticed_epoch], ...], re-read until seen or timed out.
    gaps: list[list[float]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
