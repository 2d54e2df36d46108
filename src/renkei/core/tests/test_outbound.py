"""Feeds and webhooks never connect to an address RENKEI_OUTBOUND_DENY lists, checked on the socket."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3.util.connection

from renkei.core import outbound


class _Receiver:
    """An HTTP server on 127.0.0.1 that counts the requests reaching it."""

    def __init__(self):
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                receiver.requests += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    served = _Receiver()
    yield served
    served.close()


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "169.254.169.254", "0.0.0.0", "fe80::1%2"],  # noqa: S104
)
def test_loopback_link_local_and_this_host_are_denied_by_default(address):
    assert outbound.denied_network(address) is not None


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.10", "172.16.0.1", "198.51.100.7", "2001:db8::1"])
def test_private_and_public_addresses_are_allowed_by_default(address):
    # Closed government networks put partners' servers on private addresses.
    assert outbound.denied_network(address) is None


def test_registration_sees_through_names_and_passes_names_it_cannot_resolve():
    assert "RENKEI_OUTBOUND_DENY" in outbound.refusal("http://localhost:8000/hook")
    assert "169.254.0.0/16" in outbound.refusal("https://169.254.169.254/latest/")
    assert outbound.refusal("https://10.1.2.3/taxii2/") is None
    assert outbound.refusal("https://no-such-host.invalid/taxii2/") is None


def test_the_session_refuses_a_denied_peer_before_sending_anything(receiver):
    with pytest.raises(outbound.OutboundRefused, match=r"127\.0\.0\.1"):
        outbound.session(timeout=5).get(f"http://127.0.0.1:{receiver.port}/")
    assert receiver.requests == 0


def test_the_check_is_made_on_the_connection_so_a_name_resolving_late_is_caught(receiver, monkeypatch):
    # Registration saw the name resolve elsewhere (or not at all); at request time it points here.
    resolve = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        return resolve("127.0.0.1" if host == "partner.example" else host, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection.socket, "getaddrinfo", rebinding)
    with pytest.raises(outbound.OutboundRefused):
        outbound.session(timeout=5).get(f"http://partner.example:{receiver.port}/")
    assert receiver.requests == 0


def test_an_operator_may_allow_loopback(receiver, settings):
    settings.RENKEI_OUTBOUND_DENY = ["169.254.0.0/16"]
    assert outbound.session(timeout=5).get(f"http://127.0.0.1:{receiver.port}/").status_code == 204
    assert receiver.requests == 1
