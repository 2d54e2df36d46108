"""The observables a STIX object states, as Renkei's (type, value) pairs, for correlation.

An indicator states the values its pattern compares for equality (`[ipv4-addr:value = '…']`, also
inside AND/OR), a network-traffic endpoint's (`network-traffic:dst_ref.value = '…'`) included; a
cyber-observable states its own value, also when observed-data embeds it. Anything else (ranges,
LIKE, MATCHES, objects and hashing algorithms Renkei has no observable type for) states nothing to
correlate.
"""

import ipaddress
import re

from renkei.sharing.choices import ObservableType

_STRING = r"'((?:[^'\\]|\\.)*)'"
_EQUALS = re.compile(
    r"(ipv4-addr|ipv6-addr|domain-name|url|email-addr|mac-addr):value\s*=\s*"
    + _STRING
    # A name with a hyphen is quoted ('SHA-256'): the grammar, and so validation, wants it so.
    + r"|file:hashes\.(?:'([\w-]+)'|(\w+))\s*=\s*"
    + _STRING
    + r"|network-traffic:(?:src|dst)_ref\.value\s*=\s*"
    + _STRING
    + r"|autonomous-system:number\s*=\s*(\d+)"
)
VALUE_TYPES = {"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr"}
# The hashing algorithms Renkei has an observable type for, by `_hash_name`: STIX names them MD5,
# SHA-1 and SHA-256, and patterns and hashes dictionaries also say SHA256, sha1, Sha-256…
HASH_TYPES = {"MD5": ObservableType.MD5, "SHA1": ObservableType.SHA1, "SHA256": ObservableType.SHA256}


def _hash_name(name: str) -> str:
    # As stix_validation keys its hash checks; SHA3-256 stays SHA3256, never taken for SHA-256.
    return name.upper().replace("-", "")


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


def _address_or_domain(value: str) -> str:
    """The type of a network-traffic endpoint's value, which may be an IP address, a CIDR range or
    a domain name, told apart by its form."""
    try:
        version = ipaddress.ip_network(value, strict=False).version
    except ValueError:
        return ObservableType.DOMAIN
    return ObservableType.IPV4 if version == 4 else ObservableType.IPV6


def _pattern_observables(pattern: str) -> list[tuple[str, str]]:
    found = []
    for match in _EQUALS.finditer(pattern):
        value_type, value, quoted_hash, bare_hash, hash_value, endpoint, number = match.groups()
        if value_type:
            found.append((value_type, _unescape(value)))
        elif hash_value is not None:
            hash_type = HASH_TYPES.get(_hash_name(quoted_hash or bare_hash))
            if hash_type:
                found.append((hash_type, _unescape(hash_value)))
        elif endpoint is not None:
            endpoint = _unescape(endpoint)
            found.append((_address_or_domain(endpoint), endpoint))
        else:
            found.append((ObservableType.ASN, number))
    return found


def stix_observables(obj: dict) -> list[tuple[str, str]]:
    kind = obj.get("type")
    if kind == "indicator" and obj.get("pattern_type") == "stix":
        return _pattern_observables(obj.get("pattern", ""))
    if kind in VALUE_TYPES and isinstance(obj.get("value"), str):
        return [(kind, obj["value"])]
    if kind == "file" and isinstance(obj.get("hashes"), dict):
        return [
            (HASH_TYPES[_hash_name(name)], value)
            for name, value in obj["hashes"].items()
            if _hash_name(name) in HASH_TYPES
        ]
    if kind == "observed-data" and isinstance(obj.get("objects"), dict):  # the deprecated embedded form
        embedded = [item for item in obj["objects"].values() if isinstance(item, dict)]
        return [found for item in embedded for found in stix_observables(item)]
    if kind == "autonomous-system" and isinstance(obj.get("number"), int):
        return [(ObservableType.ASN, str(obj["number"]))]
    return []
