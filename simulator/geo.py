"""Countries, cities and IP address blocks (simulator/data/geo.yaml) used to place people and attackers.

Every block is a /24 that geoip2fast maps to the same country, so detectors that geolocate IPs
agree with the `location` the simulator reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from simulator.data_files import load_yaml
from simulator.errors import ScenarioError

GEO_FILE = Path(__file__).parent / "data" / "geo.yaml"


@dataclass(frozen=True, slots=True)
class City:
    id: str
    name: str
    state: str
    country: str
    lat: float
    lon: float
    tz: str


@dataclass(frozen=True, slots=True)
class Block:
    """A /24 network ("a.b.c") with the name of the autonomous system that owns it."""

    prefix: str
    asn: str
    kind: str  # isp | hosting | tor

    def address(self, n: int) -> str:
        return f"{self.prefix}.{1 + n % 253}"


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    name: str
    isp: tuple[Block, ...]
    hosting: tuple[Block, ...]
    tor: tuple[Block, ...]
    cities: tuple[City, ...]


@dataclass(frozen=True, slots=True)
class Geo:
    countries: dict[str, Country]
    cities: dict[str, City]

    def country(self, code: str) -> Country:
        try:
            return self.countries[code]
        except KeyError:
            raise ScenarioError(
                f"unknown country {code!r}; known: {', '.join(sorted(self.countries))} (simulator/data/geo.yaml)"
            ) from None

    def city(self, city_id: str) -> City:
        try:
            return self.cities[city_id]
        except KeyError:
            raise ScenarioError(
                f"unknown city {city_id!r}; known: {', '.join(sorted(self.cities))} (simulator/data/geo.yaml)"
            ) from None

    def block(self, code: str, kind: str, n: int) -> Block:
        """The n-th block of a kind in a country, falling back to any kind the country has."""
        country = self.country(code)
        blocks = getattr(country, kind) or country.isp or country.hosting
        return blocks[n % len(blocks)]


@cache
def load_geo() -> Geo:
    raw = load_yaml(GEO_FILE.read_text())["countries"]
    countries: dict[str, Country] = {}
    cities: dict[str, City] = {}
    for code, entry in raw.items():
        country_cities = tuple(
            City(c["id"], c["name"], c["state"], code, float(c["lat"]), float(c["lon"]), c["tz"])
            for c in entry["cities"]
        )
        countries[code] = Country(
            code=code,
            name=entry["name"],
            isp=tuple(Block(b["block"], b["asn"], "isp") for b in entry.get("isp", [])),
            hosting=tuple(Block(b["block"], b["asn"], "hosting") for b in entry.get("hosting", [])),
            tor=tuple(Block(b["block"], b["asn"], "tor") for b in entry.get("tor", [])),
            cities=country_cities,
        )
        cities.update({c.id: c for c in country_cities})
    return Geo(countries, cities)


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@cache
def local_midnight_utc(tz: str, day: int) -> int:
    """Epoch seconds (UTC) of local midnight that starts `day` (days since 1970-01-01) in `tz`."""
    from datetime import datetime, timedelta

    local = datetime(1970, 1, 1) + timedelta(days=day)
    return int(local.replace(tzinfo=zone(tz)).timestamp())
