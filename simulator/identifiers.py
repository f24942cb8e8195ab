"""Deterministic identifiers (GUIDs, Google ids, Slack ids...) derived from the scenario seed.

Everything the simulator names is a keyed hash of the seed and a few parts, so the same seed
gives the same ids on every run, on any machine, for any page requested in any order.
"""

from __future__ import annotations

import base64
import hashlib
import random

_SLACK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NO_SYMBOLS = str.maketrans("+/=", "xYz")


_MASK = (1 << 64) - 1


def mix64(value: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


class Ids:
    """Id factory for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._key = f"tenantguard-simulator:{seed}".encode()
        self._tags: dict[str, int] = {}
        self._constants: dict[tuple[object, ...], str] = {}

    def fast(self, tag: str, *numbers: int) -> int:
        """A 64-bit hash of a tag and small integers; ~10x cheaper than :meth:`number` for hot paths."""
        value = self._tags.get(tag)
        if value is None:
            value = self._tags[tag] = self.number("fast", tag)
        for n in numbers:  # mix64(value ^ n), inlined: this runs a few times per rendered event
            value = ((value ^ (n & _MASK)) + 0x9E3779B97F4A7C15) & _MASK
            value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
            value ^= value >> 31
        return value

    def fast_guid(self, tag: str, *numbers: int) -> str:
        """A GUID from :meth:`fast` (event ids: millions of them, so no blake2b per id)."""
        high = self.fast(tag, *numbers)
        low = mix64(high ^ 0x5DEECE66D)
        h, lo = f"{high:016x}", f"{low:016x}"
        # version 4, and the variant from low's top hex digit (8, 9, a or b)
        return f"{h[:8]}-{h[8:12]}-4{h[13:]}-{'89ab'[(low >> 60) & 3]}{lo[1:4]}-{lo[4:]}"

    def constant_guid(self, *parts: object) -> str:
        """:meth:`guid`, remembered: for the few fixed names rendered into every event."""
        value = self._constants.get(parts)
        if value is None:
            value = self._constants[parts] = self.guid(*parts)
        return value

    def fast_token(self, tag: str, *numbers: int, length: int = 27) -> str:
        value = self.fast(tag, *numbers)
        raw = b"".join(mix64(value + i).to_bytes(8, "big") for i in range((length * 3 // 4) // 8 + 1))
        return base64.b64encode(raw).decode().translate(_NO_SYMBOLS)[:length]

    def fast_rng(self, tag: str, *numbers: int) -> random.Random:
        return random.Random(self.fast(tag, *numbers))

    def digest(self, *parts: object, size: int = 16) -> bytes:
        return hashlib.blake2b(str(parts).encode(), key=self._key, digest_size=size).digest()

    def number(self, *parts: object) -> int:
        """A 64-bit unsigned integer."""
        return int.from_bytes(self.digest(*parts, size=8), "big")

    def rng(self, *parts: object) -> random.Random:
        return random.Random(self.number(*parts))

    def guid(self, *parts: object) -> str:
        h = self.digest(*parts).hex()
        # version 4 / RFC 4122 variant bits, like the GUIDs Microsoft hands out
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"

    def google_id(self, *parts: object) -> str:
        """A 21-digit numeric id such as Google's user / profile ids."""
        return "1" + str(self.number(*parts) % 10**20).zfill(20)

    def qualifier(self, *parts: object) -> str:
        """A signed 64-bit integer as text, like Google's id.uniqueQualifier."""
        value = self.number(*parts)
        return str(value - 2**64 if value >= 2**63 else value)

    def slack_id(self, prefix: str, *parts: object, length: int = 10) -> str:
        value = self.number(*parts)
        chars = []
        for _ in range(length):
            value, rest = divmod(value, 36)
            chars.append(_SLACK_ALPHABET[rest])
        return prefix + "".join(chars)

    def token(self, *parts: object, length: int = 40) -> str:
        """Letters and digits only (base64 of the digest with + and / mapped to letters)."""
        text = base64.b64encode(self.digest(*parts, size=48)).decode().translate(_NO_SYMBOLS)
        return text[:length]

    def hex(self, *parts: object, length: int = 32) -> str:
        return self.digest(*parts, size=max(1, (length + 1) // 2)).hex()[:length]
