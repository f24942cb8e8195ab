"""On-call configuration files (YAML or TOML): bounded reading and validation naming file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.loading import Limits, LoadError, load_path, load_text
from oncall.errors import OncallInputError
from oncall.spec import OncallDocument

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 20
# On-call files are short and hand-written: no anchors or aliases at all.
LIMITS = Limits(max_bytes=MAX_FILE_BYTES, max_depth=MAX_DEPTH, max_aliases=0)


def parse_text(text: str, *, where: str, toml: bool = False) -> dict[str, Any]:
    """The mapping in `text` (YAML, or TOML when `toml`), bounded by core.loading (size, depth, no aliases)."""
    try:
        data = load_text(text, source=where, kind="toml" if toml else "yaml", limits=LIMITS).data
    except LoadError as exc:
        raise OncallInputError(str(exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OncallInputError(f"{where}: the top level must be a mapping (responders:, schedules:, ...)")
    return data


def validate(data: Any, *, where: str) -> OncallDocument:
    try:
        return OncallDocument.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:10]:
            field = ".".join(str(part) for part in error["loc"]) or "(document)"
            problems.append(f"{field}: {error['msg']}")
        raise OncallInputError(f"{where}: " + "; ".join(problems)) from None


def load_file(path: Path) -> OncallDocument:
    try:
        data = load_path(path, limits=LIMITS, kind="toml" if path.suffix.lower() == ".toml" else "yaml").data
    except LoadError as exc:
        raise OncallInputError(str(exc)) from None
    if not isinstance(data, dict):
        raise OncallInputError(f"{path}: the top level must be a mapping (responders:, schedules:, ...)")
    return validate(data, where=str(path))
