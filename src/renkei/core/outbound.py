"""HTTP to addresses that users give Renkei: TAXII feeds and webhooks.

An officer types those addresses, so a careless or hostile one could point Renkei at its own host or
at a cloud metadata service (server-side request forgery). Every such request goes through
`session()`, whose sockets check the address they actually connected to against
RENKEI_OUTBOUND_DENY. The check runs after DNS, at every connection, so a name that resolves to a
denied address only at request time is refused too. Registration checks the same list earlier, to
give the user a readable error.

Private ranges are not denied by default: Renkei runs inside closed government and operator networks
where partners' servers live on private addresses. Behind a proxy (HTTPS_PROXY) the socket's peer is
the proxy, so the proxy must keep its own list of destinations.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(Exception):
    """A connection to an address RENKEI_OUTBOUND_DENY lists; nothing was sent."""


def denied_networks() -> list[IpNetwork]:
    return [ipaddress.ip_network(network, strict=False) for network in settings.RENKEI_OUTBOUND_DENY]


def denied_network(address: str) -> IpNetwork | None:
    """The denied network holding `address` (IPv4-mapped IPv6 counts as IPv4), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return next((network for network in denied_networks() if ip in network), None)


def refusal(url: str) -> str | None:
    """Why Renkei will not connect to `url`'s host, or None. A name that does not resolve now passes:
    the connection is checked again when it is made."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return None
    for address in sorted(addresses):
        if network := denied_network(address):
            return _refusal_message(address, network)
    return None


def _refusal_message(address: str, network: IpNetwork) -> str:
    from django.utils.translation import gettext

    return gettext("Renkei does not connect to %(address)s (%(network)s is in RENKEI_OUTBOUND_DENY).") % {
        "address": address,
        "network": network,
    }


def _checked(sock: socket.socket) -> socket.socket:
    address = sock.getpeername()[0]
    if network := denied_network(address):
        sock.close()
        raise OutboundRefused(_refusal_message(address, network))
    return sock


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _checked(super()._new_conn())


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _checked(super()._new_conn())


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def __init__(self, timeout: float):
        self.timeout = timeout
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}

    def send(self, request, **kwargs):
        # Some clients (taxii2-client) set no timeout; requests would otherwise wait for ever.
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        return super().send(request, **kwargs)


def session(*, timeout: float, into: requests.Session | None = None) -> requests.Session:
    """A requests session (`into`, or a new one) whose connections are checked and time out."""
    checked = into or requests.Session()
    adapter = _CheckedAdapter(timeout)
    checked.mount("http://", adapter)
    checked.mount("https://", adapter)
    return checked
