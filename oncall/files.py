"""On-call configuration files (YAML or TOML): bounded reading and validation naming file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from core.loading import Limits, LoadError, load_path, load_text
from core.loading import validate as validate_loaded
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
    """One on-call file; errors name the file, the line (YAML) and the field."""
    try:
        loaded = load_path(path, limits=LIMITS, kind="toml" if path.suffix.lower() == ".toml" else "yaml")
    except LoadError as exc:
        raise OncallInputError(str(exc)) from None
    if not isinstance(loaded.data, dict):
        raise OncallInputError(f"{path}: the top level must be a mapping (responders:, schedules:, ...)")
    return validate_loaded(OncallDocument, loaded, error=OncallInputError)


SUFFIXES = (".yaml", ".yml", ".toml")
LISTS = ("responders", "schedules", "policies", "routes")


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
            if not found:
                raise OncallInputError(f"{path}: no .yaml, .yml or .toml files in this directory")
            files.extend(found)
        else:
            files.append(path)
    return files


def load_files(paths: list[Path]) -> OncallDocument:
    """One document from several files or directories (e.g. responders.yaml, schedules/, policies.toml).

    Each file holds any of responders, schedules, policies, routes, channels; lists are joined,
    channels may appear in one file only. Errors name the file (and, for references across files,
    the whole set).
    """
    files = _expand(paths)
    if len(files) == 1:
        return load_file(files[0])
    merged: dict[str, Any] = {name: [] for name in LISTS}
    channels_from: Path | None = None
    for path in files:
        one = load_file_partial(path)
        for key, value in one.items():
            if key == "channels":
                if channels_from is not None:
                    raise OncallInputError(f"{path}: channels are already given in {channels_from}")
                merged["channels"], channels_from = value, path
            else:
                merged[key].extend(value)
    return validate(merged, where=", ".join(str(p) for p in files))


def load_file_partial(path: Path) -> dict[str, Any]:
    """A file's mapping with every item valid on its own (references may point into other files)."""
    try:
        data = load_path(path, limits=LIMITS, kind="toml" if path.suffix.lower() == ".toml" else "yaml").data
    except LoadError as exc:
        raise OncallInputError(str(exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OncallInputError(f"{path}: the top level must be a mapping (responders:, schedules:, ...)")
    unknown = sorted(set(data) - {*LISTS, "channels"})
    if unknown:
        raise OncallInputError(
            f"{path}: unknown section(s) {', '.join(unknown)}; use responders, schedules, policies, routes, channels"
        )
    for key in LISTS:
        if not isinstance(data.get(key, []), list):
            raise OncallInputError(f"{path}: {key} must be a list")
    # Each item on its own: errors name this file; references are checked once all files are read.
    from oncall.spec import Channels, Policy, Responder, Route, Schedule

    models: dict[str, type[BaseModel]] = {
        "responders": Responder,
        "schedules": Schedule,
        "policies": Policy,
        "routes": Route,
    }
    section_item = "channels"
    try:
        for section, model in models.items():
            for number, item in enumerate(data.get(section, [])):
                section_item = f"{section}.{number}"
                model.model_validate(item)
        section_item = "channels"
        if "channels" in data:
            Channels.model_validate(data["channels"])
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(item)"
        raise OncallInputError(f"{path}: {section_item}.{field}: {error['msg']}") from None
    return data
