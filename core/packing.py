"""Provider payloads stored once, compressed: orjson, then a zstandard frame.

A stored event keeps its raw provider record exactly once (the derived columns — actor, action,
ip ... — are what queries use). Records are small (about 1 KB of JSON) and alike, so each frame
is compressed with a shipped dictionary (`core/data/event-raw-<id>.zdict`, trained on
provider-shaped records by ``python -m core.packing train``) whose id the frame names: a frame
always decodes with the dictionary it was written with, so a new dictionary is a new file next to
the old ones, never a replacement. Frames without a dictionary id decode without one.
"""

from __future__ import annotations

import sys
import threading
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import zstandard

from core.errors import TenantguardError

DATA = Path(__file__).parent / "data"
LEVEL = 3
# The dictionary new frames are written with (its zstd dictionary id): 64 KiB, trained on the
# stored events of five simulator scenarios (account_takeover, okta_mfa_fatigue,
# slack_guest_exfiltration, google_delegated_admin, insider_exfiltration). Frames of a scenario
# left out of training come out ~180 bytes against ~360 with the previous one (492587826, kept
# so the frames it wrote still decode).
CURRENT_DICTIONARY = 1836881078


class PackingError(TenantguardError):
    """A stored payload that cannot be decoded (names the dictionary it needs)."""


@cache
def _dictionary(dict_id: int) -> zstandard.ZstdCompressionDict:
    path = DATA / f"event-raw-{dict_id}.zdict"
    try:
        data = zstandard.ZstdCompressionDict(path.read_bytes())
    except OSError as exc:
        raise PackingError(
            f"payload compressed with dictionary {dict_id}, which is not shipped ({path})"
        ) from exc
    if data.dict_id() != dict_id:
        raise PackingError(f"{path} holds dictionary {data.dict_id()}, not {dict_id}")
    return data


_local = threading.local()  # zstandard (de)compressors are not thread-safe: one set per thread


def _compressor() -> zstandard.ZstdCompressor:
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=_dictionary(CURRENT_DICTIONARY), write_content_size=True
        )
        _local.compressor = compressor
    return compressor


def _decompressor(dict_id: int) -> zstandard.ZstdDecompressor:
    cached: dict[int, zstandard.ZstdDecompressor] = _local.__dict__.setdefault("decompressors", {})
    decompressor = cached.get(dict_id)
    if decompressor is None:
        decompressor = zstandard.ZstdDecompressor(dict_data=_dictionary(dict_id) if dict_id else None)
        cached[dict_id] = decompressor
    return decompressor


def dumps(value: Any) -> bytes:
    """JSON as the JSON columns stored it (datetimes and the like become text)."""
    return orjson.dumps(value, default=str)


def pack(value: Any) -> bytes:
    return _compressor().compress(dumps(value))


def unpack(data: bytes) -> Any:
    try:
        dict_id = zstandard.get_frame_parameters(data).dict_id
        return orjson.loads(_decompressor(dict_id).decompress(data))
    except zstandard.ZstdError as exc:
        raise PackingError(f"stored payload is not a readable zstandard frame: {exc}") from exc


def train(samples: list[bytes | bytearray | memoryview], size: int = 65_536) -> zstandard.ZstdCompressionDict:
    return zstandard.train_dictionary(size, samples, level=LEVEL)


def main(argv: list[str]) -> int:
    """``python -m core.packing train <sqlite file with events> ...``: write a new dictionary file
    trained on the stored events of every file named (several scenarios generalise better)."""
    import sqlite3

    if len(argv) < 2 or argv[0] != "train":
        print("usage: python -m core.packing train <sqlite database with stored events> ...", file=sys.stderr)
        return 2
    samples: list[bytes | bytearray | memoryview] = []
    for database in argv[1:]:
        with sqlite3.connect(database) as conn:
            samples.extend(dumps(unpack(row[0])) for row in conn.execute("SELECT raw FROM event"))
    dictionary = train(samples)
    path = DATA / f"event-raw-{dictionary.dict_id()}.zdict"
    path.write_bytes(dictionary.as_bytes())
    print(f"wrote {path} from {len(samples):,} records; set CURRENT_DICTIONARY = {dictionary.dict_id()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
