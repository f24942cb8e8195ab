"""Offline IP geolocation (country, network/ASN) and distances, for travel and new-network checks.

The default database is the one geoip2fast ships inside its wheel (country + ASN, loaded once,
~0.15 s; no network access). An operator may point ``TENANTGUARD_ANOMALY_GEOIP_DATABASE`` at a
MaxMind ``.mmdb`` file (GeoLite2/GeoIP2 City or Country, plus an optional ASN file); it is read
with the ``maxminddb`` reader, which parses a data format — nothing is unpickled from a path a
user controls. Provider coordinates (Entra's ``location.geoCoordinates``) always win over
either database. Country centres are used only as lower-bound distances: two sign-ins in large
countries are never "impossible" just because their centres are far apart.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detectors.anomaly.errors import AnomalyConfigError

EARTH_RADIUS_KM = 6371.0088
_CENTROIDS_FILE = Path(__file__).parent / "data" / "country_centroids.json"


@dataclass(frozen=True, slots=True)
class IpInfo:
    country: str | None
    network: str | None  # ASN organisation, else the /24 (IPv4) or /48 (IPv6) the address sits in
    latitude: float | None = None
    longitude: float | None = None
    private: bool = False


@lru_cache(maxsize=1)
def country_centroids() -> dict[str, tuple[float, float, float]]:
    raw = orjson.loads(_CENTROIDS_FILE.read_bytes())["countries"]
    return {code: (float(lat), float(lon), float(radius)) for code, (lat, lon, radius) in raw.items()}


def country_position(country: str | None) -> tuple[float, float, float] | None:
    """(lat, lon, radius_km) of a country's centre, or None when unknown."""
    if not country:
        return None
    return country_centroids().get(country.upper())


def haversine_km_array(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Vectorised great-circle distance (NaN in, NaN out)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _fallback_network(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class GeoLocator:
    """Country and network of an IP address, cached per address (sign-ins repeat addresses a lot)."""

    def __init__(
        self, mmdb_path: Path | None = None, asn_mmdb_path: Path | None = None, cache_size: int = 200_000
    ) -> None:
        self._cache: dict[str, IpInfo] = {}
        self._cache_size = cache_size
        self._mmdb: Any = None
        self._asn_mmdb: Any = None
        self._fast: Any = None
        if mmdb_path is not None:
            self._mmdb = _open_mmdb(mmdb_path)
            if asn_mmdb_path is not None:
                self._asn_mmdb = _open_mmdb(asn_mmdb_path)
        else:
            self._fast = _geoip2fast_with_asn()

    def lookup(self, ip: str | None) -> IpInfo:
        if not ip:
            return IpInfo(None, None)
        cached = self._cache.get(ip)
        if cached is not None:
            return cached
        info = self._resolve(ip)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[ip] = info
        return info

    def _resolve(self, ip: str) -> IpInfo:
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return IpInfo(None, None)
        if address.is_private or address.is_loopback or address.is_link_local:
            return IpInfo(None, _fallback_network(address), private=True)
        if self._mmdb is not None:
            return self._resolve_mmdb(address)
        result = self._fast.lookup(str(address))
        country = result.country_code if result.country_code and result.country_code != "--" else None
        if country and len(country) != 2:
            country = None
        network = getattr(result, "asn_name", "") or _fallback_network(address)
        return IpInfo(country, network)

    def _resolve_mmdb(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> IpInfo:
        record = self._mmdb.get(str(address)) or {}
        country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
        location = record.get("location") or {}
        network = None
        if self._asn_mmdb is not None:
            asn = self._asn_mmdb.get(str(address)) or {}
            network = asn.get("autonomous_system_organization")
        return IpInfo(
            country,
            network or _fallback_network(address),
            location.get("latitude"),
            location.get("longitude"),
        )


def _open_mmdb(path: Path) -> Any:
    if not path.is_file():
        raise AnomalyConfigError(
            f"MaxMind database {path} does not exist; fix TENANTGUARD_ANOMALY_GEOIP_DATABASE or unset it to use the built-in data"
        )
    try:
        import maxminddb
    except ImportError:
        raise AnomalyConfigError(
            "TENANTGUARD_ANOMALY_GEOIP_DATABASE is set but the 'maxminddb' package is not installed; pip install maxminddb"
        ) from None
    try:
        return maxminddb.open_database(str(path))
    except (OSError, ValueError) as exc:
        raise AnomalyConfigError(
            f"{path} is not a readable MaxMind database ({exc}); replace the file or unset the setting"
        ) from None


@lru_cache(maxsize=1)
def _geoip2fast_with_asn() -> Any:
    import geoip2fast
    from geoip2fast import GeoIP2Fast

    data = Path(geoip2fast.__file__).parent / "geoip2fast-asn.dat.gz"
    # The data file ships inside the installed package (site-packages), not in a user-writable place.
    return GeoIP2Fast(geoip2fast_data_file=str(data)) if data.exists() else GeoIP2Fast()


@lru_cache(maxsize=4)
def default_locator(mmdb_path: str | None = None, asn_mmdb_path: str | None = None) -> GeoLocator:
    return GeoLocator(Path(mmdb_path) if mmdb_path else None, Path(asn_mmdb_path) if asn_mmdb_path else None)
