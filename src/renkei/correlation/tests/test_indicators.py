"""Canonical forms, keys and the warning list: no database needed."""

import pytest
from django.core.exceptions import ValidationError

from renkei.correlation.indicators import enclosing_lows, indicator, ip_bound


def same_key(observable_type: str, *values: str) -> bool:
    return len({indicator(observable_type, value).key for value in values}) == 1


def test_domains_and_emails_are_compared_in_lower_case():
    assert indicator("domain-name", "Evil.Example.COM.").value == "evil.example.com"
    assert same_key("domain-name", "evil.example.com", "EVIL.example.com", "evil.example.com.")
    assert same_key("email-addr", "Phish@Evil.Example.com", "phish@evil.example.com")


def test_ip_addresses_have_one_canonical_form():
    assert indicator("ipv6-addr", "2001:DB8:0:0:0::1").value == "2001:db8::1"
    assert same_key("ipv6-addr", "2001:db8::1", "2001:0db8:0000::0001", "2001:db8::1/128")
    assert same_key("ipv4-addr", "203.0.113.7", "203.0.113.7/32", " 203.0.113.7 ")
    assert indicator("ipv4-addr", "203.0.113.9/24").value == "203.0.113.0/24"


def test_hashes_are_compared_in_lower_case_and_by_algorithm():
    upper = "D41D8CD98F00B204E9800998ECF8427E"
    assert same_key("file:hashes.MD5", upper, upper.lower())
    assert indicator("file:hashes.MD5", upper).key != indicator("domain-name", "d41d8.example.com").key
    with pytest.raises(ValidationError):
        indicator("file:hashes.SHA-1", upper)  # an MD5 is not a SHA-1


def test_urls_ignore_the_case_of_scheme_and_host_but_not_of_the_path():
    assert indicator("url", "HTTPS://Evil.Example.com/Login").value == "https://evil.example.com/Login"
    assert not same_key("url", "https://evil.example.com/Login", "https://evil.example.com/login")


def test_addresses_and_ranges_carry_their_bounds():
    address, network = indicator("ipv4-addr", "203.0.113.9"), indicator("ipv4-addr", "203.0.113.0/24")
    assert (address.ip_low, address.ip_high, address.is_range) == ("4cb007109", "4cb007109", False)
    assert (network.ip_low, network.ip_high, network.is_range) == ("4cb007100", "4cb0071ff", True)
    assert indicator("ipv6-addr", "2001:db8::/32").ip_high == "6" + "20010db8" + "f" * 24
    # Text order is address order, and the two families never mix.
    assert ip_bound(address.network.network_address) < network.ip_high < indicator("ipv6-addr", "::2").ip_low
    # Every range that may contain the address starts at one of these.
    assert network.ip_low in enclosing_lows(address.network)
    assert len(enclosing_lows(address.network)) <= 32


@pytest.mark.parametrize(
    ("observable_type", "value"),
    [
        ("ipv4-addr", "10.1.2.3"),
        ("ipv4-addr", "192.168.0.0/16"),
        ("ipv4-addr", "172.20.0.0/24"),
        ("ipv4-addr", "127.0.0.1"),
        ("ipv4-addr", "8.8.8.8"),
        ("ipv4-addr", "8.0.0.0/8"),  # holds a public resolver
        ("ipv4-addr", "0.0.0.0/0"),
        ("ipv6-addr", "fe80::1"),
        ("ipv6-addr", "2606:4700:4700::1111"),
        ("domain-name", "google.com"),
        ("domain-name", "WWW.Microsoft.com"),
        ("domain-name", "yahoo.co.jp"),
    ],
)
def test_the_warning_list_holds_private_ranges_resolvers_and_top_domains(observable_type, value):
    assert indicator(observable_type, value).warned


@pytest.mark.parametrize(
    ("observable_type", "value"),
    [
        # TEST-NETs and example.com are what tests and the demo use as malicious values.
        ("ipv4-addr", "203.0.113.7"),
        ("ipv4-addr", "198.51.100.0/24"),
        ("ipv4-addr", "192.0.2.1"),
        ("ipv6-addr", "2001:db8::1"),
        ("domain-name", "example.com"),
        ("domain-name", "evil.example.com"),
        ("domain-name", "attacker-bucket.amazonaws.com"),
        ("url", "https://google.com/"),
        ("file:hashes.MD5", "d41d8cd98f00b204e9800998ecf8427e"),
    ],
)
def test_indicators_off_the_warning_list(observable_type, value):
    assert not indicator(observable_type, value).warned
