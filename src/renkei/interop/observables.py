"""The observables a STIX object states, as Renkei's (type, value) pairs, for correlation.

An indicator states the values its pattern compares for equality (`[ipv4-addr:value = '…']`, also
inside AND/OR); a cyber-observable states its own value. Anything else (ranges, LIKE, MATCHES,
objects Renkei has no observable type for) states nothing to correlate.
"""

import re

from renkei.sharing.choices import ObservableType

_STRING = r"'((?:[^'\\]|\\.)*)'"
_EQUALS = re.compile(
    r"(ipv4-addr|ipv6-addr|domain-name|url|email-addr|mac-addr):value\s*=\s*"
    + _STRING
    + r"|file:hashes\.(?:'(SHA-256|SHA-1|MD5)'|(MD5))\s*=\s*"
    + _STRING
    + r"|autonomous-system:number\s*=\s*(\d+)"
)
VALUE_TYPES = {"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr"}
HASH_TYPES = {"SHA-256": ObservableType.SHA256, "SHA-1": ObservableType.SHA1, "MD5": ObservableType.MD5}


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal)


def stix_observables(obj: dict) -> list[tuple[str, str]]:
    kind = obj.get("type")
    if kind == "indicator" and obj.get("pattern_type") == "stix":
        found = []
        for match in _EQUALS.finditer(obj.get("pattern", "")):
            value_type, value, quoted_hash, bare_hash, hash_value, number = match.groups()
            if value_type:
                found.append((value_type, _unescape(value)))
            elif hash_value is not None:
                found.append((HASH_TYPES[quoted_hash or bare_hash], _unescape(hash_value)))
            else:
                found.append((ObservableType.ASN, number))
        return found
    if kind in VALUE_TYPES and isinstance(obj.get("value"), str):
        return [(kind, obj["value"])]
    if kind == "file" and isinstance(obj.get("hashes"), dict):
        return [(HASH_TYPES[name], value) for name, value in obj["hashes"].items() if name in HASH_TYPES]
    if kind == "autonomous-system" and isinstance(obj.get("number"), int):
        return [(ObservableType.ASN, str(obj["number"]))]
    return []
