"""An observable as correlation sees it: its canonical value, a fixed-size key, and for IP addresses
and CIDR ranges the first and last address, so that "inside a range" is an index lookup."""

import hashlib
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from renkei.correlation.warninglist import WARNED_DOMAINS, WARNED_NETWORKS
from renkei.sharing.choices import ObservableType
from renkei.sharing.observables import normalize_observable

IP_TYPES = (ObservableType.IPV4, ObservableType.IPV6)
# Hex digits of an address: fixed width, so that text order is address order.
_HEX_WIDTH = {4: 8, 6: 32}


@dataclass(frozen=True)
class Indicator:
    type: str
    value: str
    key: str
    # An address or CIDR range as its first and last address (`ip_bound`); None for other types.
    ip_low: str | None = None
    ip_high: str | None = None

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        return ipaddress.ip_network(self.value) if self.ip_low is not None else None

    @property
    def is_range(self) -> bool:
        return self.ip_low != self.ip_high

    @property
    def warned(self) -> bool:
        if self.ip_low is not None:
            return range_warned(self.ip_low, self.ip_high)
        return self.type == ObservableType.DOMAIN and self.value in WARNED_DOMAINS


def ip_bound(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as text that sorts like the address: the IP version, then fixed-width hex."""
    return f"{address.version}{int(address):0{_HEX_WIDTH[address.version]}x}"


def range_warned(ip_low: str, ip_high: str) -> bool:
    """Whether an address or range (as `ip_bound`s) meets a network on the warning list."""
    return any(low <= ip_high and ip_low <= high for low, high in _WARNED_BOUNDS)


def enclosing_lows(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """The first address of every CIDR range wider than `network` that contains it: the only
    places a containing range can start, so finding them is a handful of exact index lookups."""
    return sorted({ip_bound(wider.network_address) for wider in _supernets(network)})


def _supernets(network):
    while network.prefixlen > 0:
        network = network.supernet()
        yield network


_WARNED_BOUNDS = [
    (ip_bound(network.network_address), ip_bound(network.broadcast_address)) for network in WARNED_NETWORKS
]


def key_for(observable_type: str, value: str) -> str:
    """A fixed-size key for a canonical observable: URLs may be 2,048 characters long, too long for
    an index entry, and a digest keeps the key index compact at tens of millions of rows."""
    return hashlib.sha256(f"{observable_type}\x00{value}".encode()).hexdigest()


def indicator(observable_type: str, value: str) -> Indicator:
    """The canonical Indicator of an observable; a ValidationError when the value is not valid."""
    canonical = normalize_observable(observable_type, value)
    low = high = None
    if observable_type in IP_TYPES:
        if "/" in canonical:
            network = ipaddress.ip_network(canonical)
            if network.num_addresses == 1:  # 203.0.113.7/32 is 203.0.113.7
                canonical = str(network.network_address)
            low, high = ip_bound(network.network_address), ip_bound(network.broadcast_address)
        else:
            low = high = ip_bound(ipaddress.ip_address(canonical))
    elif observable_type == ObservableType.URL:
        canonical = _url_with_lowercase_host(canonical)
    return Indicator(observable_type, canonical, key_for(observable_type, canonical), low, high)


def _url_with_lowercase_host(url: str) -> str:
    # Scheme and host are case-insensitive; the path and query are not.
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=f"{userinfo}{at}{host.lower()}"))
