"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from core.clock import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out — SQLite would otherwise hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class PackedJSON(TypeDecorator[Any]):
    """A JSON value stored compressed (core.packing: orjson + zstandard with a shipped dictionary):
    a provider payload kept once, at a fraction of its JSON size, on both databases."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        from core.packing import pack

        return None if value is None else pack(value)

    def process_result_value(self, value: bytes | None, dialect: Any) -> Any:
        from core.packing import unpack

        return None if value is None else unpack(bytes(value))


class EncryptedText(TypeDecorator[str]):
    """Text encrypted at rest under the installation's key (core.crypto): never stored in clear.
    Not searchable in SQL: filter such columns in Python."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        from core.crypto import keyring_of

        return None if value is None else keyring_of(dialect).encrypt(str(value).encode())

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        from core.crypto import keyring_of

        return None if value is None else keyring_of(dialect).decrypt(value).decode()


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value encrypted at rest (see EncryptedText)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        from core.crypto import keyring_of

        if value is None:
            return None
        try:
            plain = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # what orjson cannot write (integers beyond 64 bits): the stdlib, as JSON columns
            plain = json.dumps(value).encode()
        return keyring_of(dialect).encrypt(plain)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        from core.crypto import keyring_of
        from core.db import json_loads

        return None if value is None else json_loads(keyring_of(dialect).decrypt(value))
