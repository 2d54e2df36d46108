"""Test servers (webhook receivers, TAXII servers) listen on loopback, which RENKEI_OUTBOUND_DENY denies
by default; tests that talk to them allow loopback and keep the rest of the list."""

import ipaddress

import pytest
from django.conf import settings


def deny_list_without_loopback() -> list[str]:
    return [
        network for network in settings.RENKEI_OUTBOUND_DENY if not ipaddress.ip_network(network).is_loopback
    ]


@pytest.fixture
def loopback_allowed(settings):
    settings.RENKEI_OUTBOUND_DENY = deny_list_without_loopback()
