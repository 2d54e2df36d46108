"""Strict, fast validation of STIX 2.1 content for import.

Pure functions: ``validate_object`` checks one object, ``parse_bundle`` checks a whole bundle (size,
nesting, JSON, duplicates, reference cycles) and ``pattern_errors`` checks an indicator pattern. The
rules mirror what ``stix2.parse(..., allow_custom=True)`` enforces, and are stricter where the STIX 2.1
specification is (for example ``valid_from`` is required, ``confidence`` is 0–100, list properties may
not be empty and property values must have their JSON type, not a coercible one).

Messages are translated with Django's gettext when they are produced, so they come in the language
active then (the request's). Only failures call gettext: valid content, the common case by far, costs
nothing extra. Property names, type names and values stay as they are in every language; a message is
``"<property>: <reason>"`` with only the reason translated.

Patterns: a hand-written recogniser accepts the common shapes; anything it does not accept is handed
to the ANTLR-based ``stix2patterns`` validator, so the answer is always the same as that validator's,
only much faster for ordinary patterns.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import functools
import gc
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from stix2patterns.validator import run_validator

# A checker returns None for a good value, or a short, translated reason for a bad one.
Checker = Callable[[object], str | None]


def _named(name: str, reason: str) -> str:
    """``"<name>: <reason>"``, the form of every message: the name stays, the reason is translated."""
    return f"{name}: {reason}"


def _nested(name: str, reason: str) -> str:
    """A reason about a property inside a value: "source_name must be a string"."""
    # Translators: a property nested in a value, and what is wrong with it ("source_name must be a
    # string", "item 0 source_name is required"). Keep both parts; the reason is already translated.
    return _("%(property)s %(reason)s") % {"property": name, "reason": reason}


# ---------------------------------------------------------------------------------------------------
# Identifiers, names, timestamps

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}\Z")
# Types start with a letter; single hyphens only, none at either end (STIX 2.1 §2.9 plus stix2's rule).
TYPE_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
CUSTOM_PROPERTY_RE = re.compile(r"[a-z][a-z0-9_]{2,249}\Z")
DICT_KEY_RE = re.compile(r"[a-zA-Z0-9_-]{1,250}\Z")
SELECTOR_RE = re.compile(r"(?:[a-z0-9_-]{3,250}(?:\.(?:\[\d+\]|[a-z0-9_-]{1,250}))*|id)\Z")
# Field ranges are in the regex; only days 29-31 need a calendar check afterwards.
TIMESTAMP_RE = re.compile(
    r"(?!0000)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?Z\Z"
)
HEX_RE = re.compile(r"(?:[a-fA-F0-9]{2})+\Z")

# STIX 2.1 §11.1 (and stix2-validator) reserve these for future use.
RESERVED_PROPERTIES = frozenset({"severity", "username", "phone_numbers", "action"})
RESERVED_TYPES = frozenset({"action"})

# Hash values are sanity-checked the way stix2 does (stix2/hashes.py), keyed by the name with "-"
# removed and upper-cased, so "sha256" and "SHA-256" are both checked.
HASH_VALUE_RES = {
    "MD5": re.compile(r"[a-fA-F0-9]{32}\Z"),
    "MD6": re.compile(
        r"(?:[a-fA-F0-9]{32}|[a-fA-F0-9]{40}|[a-fA-F0-9]{56}|[a-fA-F0-9]{64}"
        r"|[a-fA-F0-9]{96}|[a-fA-F0-9]{128})\Z"
    ),
    "RIPEMD160": re.compile(r"[a-fA-F0-9]{40}\Z"),
    "SHA1": re.compile(r"[a-fA-F0-9]{40}\Z"),
    "SHA224": re.compile(r"[a-fA-F0-9]{56}\Z"),
    "SHA256": re.compile(r"[a-fA-F0-9]{64}\Z"),
    "SHA384": re.compile(r"[a-fA-F0-9]{96}\Z"),
    "SHA512": re.compile(r"[a-fA-F0-9]{128}\Z"),
    "SHA3224": re.compile(r"[a-fA-F0-9]{56}\Z"),
    "SHA3256": re.compile(r"[a-fA-F0-9]{64}\Z"),
    "SHA3384": re.compile(r"[a-fA-F0-9]{96}\Z"),
    "SHA3512": re.compile(r"[a-fA-F0-9]{128}\Z"),
    "SSDEEP": re.compile(r"[a-zA-Z0-9/+:.]{1,128}\Z"),
    "WHIRLPOOL": re.compile(r"[a-fA-F0-9]{128}\Z"),
    "TLSH": re.compile(r"[a-fA-F0-9]{70}\Z"),
}
# hash-algorithm-ov: the only names external references may use (stix2 enforces this too).
HASH_ALGORITHM_OV = frozenset(
    {"MD5", "SHA-1", "SHA-256", "SHA-512", "SHA3-256", "SHA3-512", "SSDEEP", "TLSH"}
)

SDO_TYPES = frozenset(
    {
        "attack-pattern",
        "campaign",
        "course-of-action",
        "grouping",
        "identity",
        "incident",
        "indicator",
        "infrastructure",
        "intrusion-set",
        "location",
        "malware",
        "malware-analysis",
        "note",
        "observed-data",
        "opinion",
        "report",
        "threat-actor",
        "tool",
        "vulnerability",
    }
)
SRO_TYPES = frozenset({"relationship", "sighting"})
SCO_TYPES = frozenset(
    {
        "artifact",
        "autonomous-system",
        "directory",
        "domain-name",
        "email-addr",
        "email-message",
        "file",
        "ipv4-addr",
        "ipv6-addr",
        "mac-addr",
        "mutex",
        "network-traffic",
        "process",
        "software",
        "url",
        "user-account",
        "windows-registry-key",
        "x509-certificate",
    }
)
# Meta objects: they are not SDOs, SROs or SCOs and may not be the target of content references.
META_TYPES = frozenset({"marking-definition", "language-content", "extension-definition", "bundle"})
EXTENSION_TYPES = frozenset(
    {
        "new-sdo",
        "new-sco",
        "new-sro",
        "property-extension",
        "toplevel-property-extension",
    }
)

TLP_V1_MARKINGS = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
TLP_V1_CREATED = "2017-01-20T00:00:00.000Z"
TLP_V2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_V2_LEVELS = frozenset({"clear", "green", "amber", "amber+strict", "red"})


def is_timestamp(value: object) -> bool:
    """True for ``YYYY-MM-DDTHH:MM:SS[.s+]Z`` naming a real UTC instant (any number of fraction digits)."""
    return type(value) is str and _is_timestamp_text(value)


# Bundles repeat the same few timestamps (created, modified, valid_from of one batch) many times.
@functools.lru_cache(maxsize=8192)
def _is_timestamp_text(value: str) -> bool:
    if TIMESTAMP_RE.match(value) is None:
        return False
    if value[8:10] > "28":
        try:
            dt.date(int(value[:4]), int(value[5:7]), int(value[8:10]))
        except ValueError:
            return False
    return True


def timestamp_key(value: str) -> tuple[str, str]:
    """A sort key for valid timestamps: whole seconds, then the fraction without trailing zeros."""
    return value[:19], value[20:-1].rstrip("0")


def id_type(value: object) -> str | None:
    """The object type an identifier names, or None when it is not ``<type>--<RFC 4122 UUID>``."""
    if type(value) is not str:
        return None
    type_, sep, uuid_part = value.partition("--")
    if not sep or not UUID_RE.match(uuid_part) or not valid_type_name(type_):
        return None
    return type_


def valid_type_name(type_: object) -> bool:
    return type(type_) is str and 3 <= len(type_) <= 250 and TYPE_RE.match(type_) is not None


# ---------------------------------------------------------------------------------------------------
# Property checkers


def _string(value: object) -> str | None:
    return None if type(value) is str else _("must be a string")


def _timestamp(value: object) -> str | None:
    return None if is_timestamp(value) else _("not a STIX timestamp")


def _boolean(value: object) -> str | None:
    return None if type(value) is bool else _("must be true or false")


def _binary(value: object) -> str | None:
    if type(value) is not str:
        return _("must be a base64 string")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return _("must be a base64 string")
    return None


def _hex(value: object) -> str | None:
    return None if type(value) is str and HEX_RE.match(value) else _("must be an even number of hex digits")


def _out_of_range(low: float | None, high: float | None) -> str:
    return _("must be between %(low)s and %(high)s") % {
        "low": "-∞" if low is None else low,
        "high": "∞" if high is None else high,
    }


def _integer(low: int | None = None, high: int | None = None) -> Checker:
    def check(value: object) -> str | None:
        if type(value) is not int:
            return _("must be an integer")
        if (low is not None and value < low) or (high is not None and value > high):
            return _out_of_range(low, high)
        return None

    return check


def _number(low: float | None = None, high: float | None = None) -> Checker:
    def check(value: object) -> str | None:
        if type(value) not in (int, float):
            return _("must be a number")
        if (low is not None and value < low) or (high is not None and value > high):
            return _out_of_range(low, high)
        return None

    return check


def _one_of(values: str) -> str:
    return _("must be one of %(values)s") % {"values": values}


def _enum(*allowed: str) -> Checker:
    allowed_set = frozenset(allowed)

    def check(value: object) -> str | None:
        return None if type(value) is str and value in allowed_set else _one_of(", ".join(allowed))

    return check


def _list_of(item: Checker) -> Checker:
    def check(value: object) -> str | None:
        if type(value) is not list or not value:
            return _("must be a non-empty list")
        for index, element in enumerate(value):
            reason = item(element)
            if reason:
                # Translators: a list item and what is wrong with it ("item 0 must be a string").
                return _("item %(index)s %(reason)s") % {"index": index, "reason": reason}
        return None

    return check


def _dictionary(value: object) -> str | None:
    if type(value) is not dict or not value:
        return _("must be a non-empty object")
    for key in value:
        if not DICT_KEY_RE.match(key):
            return _("key %(key)s must be 1-250 of a-z, A-Z, 0-9, '-', '_'") % {"key": repr(key)}
    return None


def _hashes(value: object, *, only_ov: bool = False) -> str | None:
    reason = _dictionary(value)
    if reason:
        return reason
    for name, digest in value.items():  # type: ignore[union-attr]
        if type(digest) is not str:
            return _nested(name, _("must be a string"))
        if only_ov and name not in HASH_ALGORITHM_OV:
            return _("%(name)s is not in hash-algorithm-ov") % {"name": name}
        regex = HASH_VALUE_RES.get(name.replace("-", "").upper())
        if regex is not None and not regex.match(digest):
            return _("%(name)s is not a valid hash value") % {"name": name}
    return None


def _ref(*, to: frozenset[str] | None = None, not_to: frozenset[str] = frozenset()) -> Checker:
    """An identifier whose type is in ``to`` (if given) and not in ``not_to``."""
    expected = ", ".join(sorted(to or ()))

    def wanted() -> str:
        if not to:
            return _("must be a STIX object identifier")
        if len(to) == 1:
            return _("must be an identifier of type %(type)s") % {"type": expected}
        return _("must be an identifier of one of the types %(types)s") % {"types": expected}

    def check(value: object) -> str | None:
        type_ = id_type(value)
        if type_ is None:
            return wanted()
        if (to is not None and type_ not in to) or type_ in not_to:
            # Translators: what the reference must be, then the type it names instead.
            return _("%(expected)s, not %(type)s") % {"expected": wanted(), "type": type_}
        return None

    return check


def _refs_to(*types: str) -> Checker:
    return _ref(to=frozenset(types))


# Unknown (custom) types are allowed where stix2 with allow_custom allows them.
REF_ANY_OBJECT = _ref(not_to=frozenset({"bundle"}))
REF_SDO = _ref(not_to=SCO_TYPES | SRO_TYPES | META_TYPES)
REF_SCO = _ref(not_to=SDO_TYPES | SRO_TYPES | META_TYPES)
REF_SCO_OR_SRO = _ref(not_to=SDO_TYPES | META_TYPES)
REF_RELATABLE = _ref(not_to=META_TYPES | SRO_TYPES)
REF_IDENTITY = _refs_to("identity")
REF_MARKING = _refs_to("marking-definition")


def _embedded(
    schema: dict[str, Checker],
    required: frozenset[str] = frozenset(),
    rule: Callable[[dict], str | None] | None = None,
) -> Checker:
    """A nested object (kill chain phase, MIME part, …): known keys checked, custom keys named well."""

    def check(value: object) -> str | None:
        if type(value) is not dict or not value:
            return _("must be a non-empty object")
        missing = required - value.keys()
        if missing:
            return _("%(property)s is required") % {"property": sorted(missing)[0]}
        for key, item in value.items():
            checker = schema.get(key)
            if checker is None:
                if not CUSTOM_PROPERTY_RE.match(key):
                    return _named(key, _("not an allowed property name"))
                continue
            reason = checker(item)
            if reason:
                return _nested(key, reason)
        return rule(value) if rule else None

    return check


def _at_least_one(*names: str) -> Callable[[dict], str | None]:
    def rule(value: dict) -> str | None:
        if any(n in value for n in names):
            return None
        return _("needs one of %(names)s") % {"names": ", ".join(names)}

    return rule


KILL_CHAIN_PHASES = _list_of(
    _embedded(
        {"kill_chain_name": _string, "phase_name": _string}, frozenset({"kill_chain_name", "phase_name"})
    )
)
EXTERNAL_REFERENCES = _list_of(
    _embedded(
        {
            "source_name": _string,
            "description": _string,
            "url": _string,
            "external_id": _string,
            "hashes": functools.partial(_hashes, only_ov=True),
        },
        frozenset({"source_name"}),
        _at_least_one("description", "external_id", "url"),
    )
)


def _granular_marking(value: object) -> str | None:
    if type(value) is not dict:
        return _("must be an object")
    has_ref, has_lang = "marking_ref" in value, "lang" in value
    if has_ref == has_lang:
        return _("needs exactly one of %(names)s") % {"names": "marking_ref, lang"}
    if has_ref and (reason := REF_MARKING(value["marking_ref"])):
        return _nested("marking_ref", reason)
    if has_lang and (reason := _string(value["lang"])):
        return _nested("lang", reason)
    reason = _list_of(_selector)(value.get("selectors"))
    if reason:
        return _nested("selectors", reason)
    extra = value.keys() - {"marking_ref", "lang", "selectors"}
    if any(not CUSTOM_PROPERTY_RE.match(k) for k in extra):
        return _("has a property with a bad name")
    return None


def _selector(value: object) -> str | None:
    return None if type(value) is str and SELECTOR_RE.match(value) else _("is not a valid selector")


def _selector_resolves(obj: dict, selector: str) -> bool:
    """True when the selector names a present, non-empty value in obj (what stix2 requires)."""
    node: object = obj
    for step in selector.split("."):
        if step.startswith("["):
            index = int(step[1:-1])
            if type(node) is not list or index >= len(node):
                return False
            node = node[index]
        elif type(node) is dict and step in node:
            node = node[step]
        else:
            return False
    return bool(node)


def _extensions(value: object) -> str | None:
    if type(value) is not dict or not value:
        return _("must be a non-empty object")
    for key, content in value.items():
        if type(content) is not dict:
            return _nested(key, _("must be an object"))
        if key.startswith("extension-definition--"):
            if id_type(key) != "extension-definition":
                return _("%(name)s is not an extension-definition identifier") % {"name": key}
            if content.get("extension_type") not in EXTENSION_TYPES:
                return _named(key, _nested("extension_type", _one_of(", ".join(sorted(EXTENSION_TYPES)))))
        elif key in PREDEFINED_EXTENSIONS:
            reason = PREDEFINED_EXTENSIONS[key](content)
            if reason:
                return _named(key, reason)
        elif not DICT_KEY_RE.match(key):
            return _("%(name)s is not an allowed extension name") % {"name": repr(key)}
    return None


# ---------------------------------------------------------------------------------------------------
# Schemas: property checkers per object type (from STIX 2.1 §4–§7, cross-checked with stix2/v21)

STR, TS, BOOL, INT = _string, _timestamp, _boolean, _integer()
STRINGS = _list_of(_string)
NONNEG = _integer(0)

COMMON_SDO: dict[str, Checker] = {
    "type": _string,
    "spec_version": _enum("2.1"),
    "id": _string,
    "created_by_ref": REF_IDENTITY,
    "created": TS,
    "modified": TS,
    "revoked": BOOL,
    "labels": STRINGS,
    "confidence": _integer(0, 100),
    "lang": STR,
    "external_references": EXTERNAL_REFERENCES,
    "object_marking_refs": _list_of(REF_MARKING),
    "granular_markings": _list_of(_granular_marking),
    "extensions": _extensions,
}
COMMON_SCO: dict[str, Checker] = {
    "type": _string,
    "spec_version": _enum("2.1"),
    "id": _string,
    "object_marking_refs": _list_of(REF_MARKING),
    "granular_markings": _list_of(_granular_marking),
    "defanged": BOOL,
    "extensions": _extensions,
}
SDO_REQUIRED = frozenset({"type", "spec_version", "id", "created", "modified"})
SCO_REQUIRED = frozenset({"type", "id"})


@dataclass(frozen=True)
class Schema:
    """What one object type may and must carry, plus rules that span properties."""

    properties: dict[str, Checker]
    required: frozenset[str]
    rules: tuple[Callable[[dict], str | None], ...] = ()
    # Rule messages are "<property>: <reason>"; these rules see only objects whose properties passed.


def _ordered(first: str, last: str, *, strict: bool = False) -> Callable[[dict], str | None]:
    def rule(obj: dict) -> str | None:
        if first in obj and last in obj:
            a, b = timestamp_key(obj[first]), timestamp_key(obj[last])
            if b < a or (strict and b == a):
                order = (
                    _("must be later than %(property)s") if strict else _("must be at or after %(property)s")
                )
                return _named(last, order % {"property": first})
        return None

    return rule


def _requires_one(*names: str) -> Callable[[dict], str | None]:
    def rule(obj: dict) -> str | None:
        if any(n in obj for n in names):
            return None
        return _named(names[0], _("one of %(names)s is required") % {"names": ", ".join(names)})

    return rule


def _exactly_one(a: str, b: str) -> Callable[[dict], str | None]:
    def rule(obj: dict) -> str | None:
        if (a in obj) != (b in obj):
            return None
        return _named(a, _("exactly one of %(names)s is required") % {"names": f"{a}, {b}"})

    return rule


def sdo(
    required: set[str] | frozenset[str] = frozenset(),
    *rules: Callable[[dict], str | None],
    **properties: Checker,
) -> Schema:
    return Schema(
        {**COMMON_SDO, **properties},
        SDO_REQUIRED | frozenset(required),
        (_ordered("created", "modified"), *rules),
    )


def sco(
    required: set[str] | frozenset[str] = frozenset(),
    *rules: Callable[[dict], str | None],
    **properties: Checker,
) -> Schema:
    return Schema({**COMMON_SCO, **properties}, SCO_REQUIRED | frozenset(required), tuple(rules))


def _embedded_observables(value: object) -> str | None:
    """observed-data's deprecated ``objects`` (STIX 2.1 §4.13): cyber-observables keyed by a local
    name, each checked as a top-level one is, except that it needs no identifier (stix2 makes one)."""
    reason = _dictionary(value)
    if reason:
        return reason
    for key, observable in value.items():  # type: ignore[union-attr]
        if type(observable) is not dict:
            return _named(key, _("must be an object"))
        type_ = observable.get("type")
        if type(type_) is str and (type_ in SDO_TYPES or type_ in SRO_TYPES or type_ in META_TYPES):
            not_observable = _("%(type)s is not a cyber-observable type") % {"type": type_}
            return _named(key, _named("type", not_observable))
        errors = validate_object(observable, id_optional=True)
        if errors:
            return _named(key, errors[0])
    return None


SEEN = {"first_seen": TS, "last_seen": TS}
SEEN_ORDER = _ordered("first_seen", "last_seen")
OV, OVS = STR, STRINGS  # open vocabularies: any string, as the specification allows

SCHEMAS: dict[str, Schema] = {
    "attack-pattern": sdo(
        {"name"}, name=STR, description=STR, aliases=STRINGS, kill_chain_phases=KILL_CHAIN_PHASES
    ),
    "campaign": sdo({"name"}, SEEN_ORDER, name=STR, description=STR, aliases=STRINGS, objective=STR, **SEEN),
    "course-of-action": sdo({"name"}, name=STR, description=STR),
    "grouping": sdo(
        {"context", "object_refs"},
        name=STR,
        description=STR,
        context=OV,
        object_refs=_list_of(REF_ANY_OBJECT),
    ),
    "identity": sdo(
        {"name"},
        name=STR,
        description=STR,
        roles=STRINGS,
        identity_class=OV,
        sectors=OVS,
        contact_information=STR,
    ),
    "incident": sdo({"name"}, name=STR, description=STR, kill_chain_phases=KILL_CHAIN_PHASES),
    "indicator": sdo(
        {"pattern", "pattern_type", "valid_from"},
        _ordered("valid_from", "valid_until", strict=True),
        name=STR,
        description=STR,
        indicator_types=OVS,
        pattern=STR,
        pattern_type=OV,
        pattern_version=STR,
        valid_from=TS,
        valid_until=TS,
        kill_chain_phases=KILL_CHAIN_PHASES,
    ),
    "infrastructure": sdo(
        {"name"},
        SEEN_ORDER,
        name=STR,
        description=STR,
        infrastructure_types=OVS,
        aliases=STRINGS,
        kill_chain_phases=KILL_CHAIN_PHASES,
        **SEEN,
    ),
    "intrusion-set": sdo(
        {"name"},
        SEEN_ORDER,
        name=STR,
        description=STR,
        aliases=STRINGS,
        goals=STRINGS,
        resource_level=OV,
        primary_motivation=OV,
        secondary_motivations=OVS,
        **SEEN,
    ),
    "location": sdo(
        set(),
        _requires_one("region", "country", "latitude"),
        lambda o: (
            _named("longitude", _("latitude and longitude go together"))
            if ("latitude" in o) != ("longitude" in o)
            else None
        ),
        lambda o: (
            _named("precision", _("needs latitude and longitude"))
            if "precision" in o and "latitude" not in o
            else None
        ),
        name=STR,
        description=STR,
        latitude=_number(-90.0, 90.0),
        longitude=_number(-180.0, 180.0),
        precision=_number(0.0),
        region=OV,
        country=STR,
        administrative_area=STR,
        city=STR,
        street_address=STR,
        postal_code=STR,
    ),
    "malware": sdo(
        {"is_family"},
        SEEN_ORDER,
        lambda o: (
            _named("name", _("required when %(property)s is true") % {"property": "is_family"})
            if o["is_family"] and "name" not in o
            else None
        ),
        name=STR,
        description=STR,
        malware_types=OVS,
        is_family=BOOL,
        aliases=STRINGS,
        kill_chain_phases=KILL_CHAIN_PHASES,
        operating_system_refs=_list_of(_refs_to("software")),
        architecture_execution_envs=OVS,
        implementation_languages=OVS,
        capabilities=OVS,
        sample_refs=_list_of(_refs_to("artifact", "file")),
        **SEEN,
    ),
    "malware-analysis": sdo(
        {"product"},
        _requires_one("result", "analysis_sco_refs"),
        product=STR,
        version=STR,
        host_vm_ref=_refs_to("software"),
        operating_system_ref=_refs_to("software"),
        installed_software_refs=_list_of(_refs_to("software")),
        configuration_version=STR,
        modules=STRINGS,
        analysis_engine_version=STR,
        analysis_definition_version=STR,
        submitted=TS,
        analysis_started=TS,
        analysis_ended=TS,
        result_name=STR,
        result=OV,
        analysis_sco_refs=_list_of(REF_SCO),
        sample_ref=REF_SCO,
    ),
    "note": sdo(
        {"content", "object_refs"},
        abstract=STR,
        content=STR,
        authors=STRINGS,
        object_refs=_list_of(REF_ANY_OBJECT),
    ),
    "observed-data": sdo(
        {"first_observed", "last_observed", "number_observed"},
        _ordered("first_observed", "last_observed"),
        _exactly_one("object_refs", "objects"),
        first_observed=TS,
        last_observed=TS,
        number_observed=_integer(1, 999_999_999),
        object_refs=_list_of(REF_SCO_OR_SRO),
        objects=_embedded_observables,
    ),
    "opinion": sdo(
        {"opinion", "object_refs"},
        explanation=STR,
        authors=STRINGS,
        opinion=_enum("strongly-disagree", "disagree", "neutral", "agree", "strongly-agree"),
        object_refs=_list_of(REF_ANY_OBJECT),
    ),
    "report": sdo(
        {"name", "published", "object_refs"},
        name=STR,
        description=STR,
        report_types=OVS,
        published=TS,
        object_refs=_list_of(REF_ANY_OBJECT),
    ),
    "threat-actor": sdo(
        {"name"},
        SEEN_ORDER,
        name=STR,
        description=STR,
        threat_actor_types=OVS,
        aliases=STRINGS,
        roles=OVS,
        goals=STRINGS,
        sophistication=OV,
        resource_level=OV,
        primary_motivation=OV,
        secondary_motivations=OVS,
        personal_motivations=OVS,
        **SEEN,
    ),
    "tool": sdo(
        {"name"},
        name=STR,
        description=STR,
        tool_types=OVS,
        aliases=STRINGS,
        kill_chain_phases=KILL_CHAIN_PHASES,
        tool_version=STR,
    ),
    "vulnerability": sdo({"name"}, name=STR, description=STR),
    "relationship": sdo(
        {"relationship_type", "source_ref", "target_ref"},
        _ordered("start_time", "stop_time", strict=True),
        relationship_type=STR,
        description=STR,
        source_ref=REF_RELATABLE,
        target_ref=REF_RELATABLE,
        start_time=TS,
        stop_time=TS,
    ),
    "sighting": sdo(
        {"sighting_of_ref"},
        SEEN_ORDER,
        description=STR,
        count=_integer(0, 999_999_999),
        sighting_of_ref=REF_SDO,
        observed_data_refs=_list_of(_refs_to("observed-data")),
        where_sighted_refs=_list_of(_refs_to("identity", "location")),
        summary=BOOL,
        **SEEN,
    ),
    "language-content": sdo(
        {"object_ref", "contents"}, object_ref=REF_ANY_OBJECT, object_modified=TS, contents=_dictionary
    ),
    "extension-definition": sdo(
        {"created_by_ref", "name", "schema", "version", "extension_types"},
        name=STR,
        description=STR,
        schema=STR,
        version=STR,
        extension_properties=STRINGS,
        extension_types=_list_of(_enum(*sorted(EXTENSION_TYPES))),
    ),
    # Cyber-observable objects (§6)
    "artifact": sco(
        set(),
        _exactly_one("payload_bin", "url"),
        lambda o: (
            _named("hashes", _("required when %(property)s is present") % {"property": "url"})
            if "url" in o and "hashes" not in o
            else None
        ),
        mime_type=STR,
        payload_bin=_binary,
        url=STR,
        hashes=_hashes,
        encryption_algorithm=_enum("AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated"),
        decryption_key=STR,
    ),
    "autonomous-system": sco({"number"}, number=INT, name=STR, rir=STR),
    "directory": sco(
        {"path"},
        path=STR,
        path_enc=STR,
        ctime=TS,
        mtime=TS,
        atime=TS,
        contains_refs=_list_of(_refs_to("directory", "file")),
    ),
    "domain-name": sco(
        {"value"}, value=STR, resolves_to_refs=_list_of(_refs_to("domain-name", "ipv4-addr", "ipv6-addr"))
    ),
    "email-addr": sco({"value"}, value=STR, display_name=STR, belongs_to_ref=_refs_to("user-account")),
    "email-message": sco(
        {"is_multipart"},
        lambda o: (
            _named("body", _("not allowed when %(property)s is true") % {"property": "is_multipart"})
            if o["is_multipart"] and "body" in o
            else None
        ),
        lambda o: (
            _named(
                "body_multipart", _("only allowed when %(property)s is true") % {"property": "is_multipart"}
            )
            if not o["is_multipart"] and "body_multipart" in o
            else None
        ),
        is_multipart=BOOL,
        date=TS,
        content_type=STR,
        from_ref=_refs_to("email-addr"),
        sender_ref=_refs_to("email-addr"),
        to_refs=_list_of(_refs_to("email-addr")),
        cc_refs=_list_of(_refs_to("email-addr")),
        bcc_refs=_list_of(_refs_to("email-addr")),
        message_id=STR,
        subject=STR,
        received_lines=STRINGS,
        additional_header_fields=_dictionary,
        body=STR,
        body_multipart=_list_of(
            _embedded(
                {
                    "body": STR,
                    "body_raw_ref": _refs_to("artifact", "file"),
                    "content_type": STR,
                    "content_disposition": STR,
                },
                rule=_at_least_one("body", "body_raw_ref"),
            )
        ),
        raw_email_ref=_refs_to("artifact"),
    ),
    "file": sco(
        set(),
        _requires_one("hashes", "name"),
        hashes=_hashes,
        size=NONNEG,
        name=STR,
        name_enc=STR,
        magic_number_hex=_hex,
        mime_type=STR,
        ctime=TS,
        mtime=TS,
        atime=TS,
        parent_directory_ref=_refs_to("directory"),
        contains_refs=_list_of(REF_SCO),
        content_ref=_refs_to("artifact"),
    ),
    "ipv4-addr": sco(
        {"value"},
        value=STR,
        resolves_to_refs=_list_of(_refs_to("mac-addr")),
        belongs_to_refs=_list_of(_refs_to("autonomous-system")),
    ),
    "ipv6-addr": sco(
        {"value"},
        value=STR,
        resolves_to_refs=_list_of(_refs_to("mac-addr")),
        belongs_to_refs=_list_of(_refs_to("autonomous-system")),
    ),
    "mac-addr": sco({"value"}, value=STR),
    "mutex": sco({"name"}, name=STR),
    "network-traffic": sco(
        {"protocols"},
        _requires_one("src_ref", "dst_ref"),
        _ordered("start", "end"),
        lambda o: (
            _named("is_active", _("must be false when %(property)s is present") % {"property": "end"})
            if "end" in o and o.get("is_active") is not False
            else None
        ),
        start=TS,
        end=TS,
        is_active=BOOL,
        src_ref=_refs_to("domain-name", "ipv4-addr", "ipv6-addr", "mac-addr"),
        dst_ref=_refs_to("domain-name", "ipv4-addr", "ipv6-addr", "mac-addr"),
        src_port=_integer(0, 65535),
        dst_port=_integer(0, 65535),
        protocols=STRINGS,
        src_byte_count=NONNEG,
        dst_byte_count=NONNEG,
        src_packets=NONNEG,
        dst_packets=NONNEG,
        ipfix=_dictionary,
        src_payload_ref=_refs_to("artifact"),
        dst_payload_ref=_refs_to("artifact"),
        encapsulates_refs=_list_of(_refs_to("network-traffic")),
        encapsulated_by_ref=_refs_to("network-traffic"),
    ),
    "process": sco(
        set(),
        lambda o: (
            None
            if o.keys() - {"type", "id", "spec_version", "defanged", "extensions"} or "extensions" in o
            else _named("type", _("a %(type)s needs at least one property") % {"type": "process"})
        ),
        is_hidden=BOOL,
        pid=INT,
        created_time=TS,
        cwd=STR,
        command_line=STR,
        environment_variables=_dictionary,
        opened_connection_refs=_list_of(_refs_to("network-traffic")),
        creator_user_ref=_refs_to("user-account"),
        image_ref=_refs_to("file"),
        parent_ref=_refs_to("process"),
        child_refs=_list_of(_refs_to("process")),
    ),
    "software": sco({"name"}, name=STR, cpe=STR, swid=STR, languages=STRINGS, vendor=STR, version=STR),
    "url": sco({"value"}, value=STR),
    "user-account": sco(
        set(),
        user_id=STR,
        credential=STR,
        account_login=STR,
        account_type=OV,
        display_name=STR,
        is_service_account=BOOL,
        is_privileged=BOOL,
        can_escalate_privs=BOOL,
        is_disabled=BOOL,
        account_created=TS,
        account_expires=TS,
        credential_last_changed=TS,
        account_first_login=TS,
        account_last_login=TS,
    ),
    "windows-registry-key": sco(
        set(),
        key=STR,
        modified_time=TS,
        creator_user_ref=_refs_to("user-account"),
        number_of_subkeys=INT,
        values=_list_of(
            _embedded(
                {
                    "name": STR,
                    "data": STR,
                    "data_type": _enum(
                        "REG_NONE",
                        "REG_SZ",
                        "REG_EXPAND_SZ",
                        "REG_BINARY",
                        "REG_DWORD",
                        "REG_DWORD_BIG_ENDIAN",
                        "REG_DWORD_LITTLE_ENDIAN",
                        "REG_LINK",
                        "REG_MULTI_SZ",
                        "REG_RESOURCE_LIST",
                        "REG_FULL_RESOURCE_DESCRIPTION",
                        "REG_RESOURCE_REQUIREMENTS_LIST",
                        "REG_QWORD",
                        "REG_INVALID_TYPE",
                    ),
                }
            )
        ),
    ),
    "x509-certificate": sco(
        set(),
        _requires_one(
            "is_self_signed",
            "hashes",
            "version",
            "serial_number",
            "signature_algorithm",
            "issuer",
            "validity_not_before",
            "validity_not_after",
            "subject",
            "subject_public_key_algorithm",
            "subject_public_key_modulus",
            "subject_public_key_exponent",
            "x509_v3_extensions",
        ),
        _ordered("validity_not_before", "validity_not_after"),
        is_self_signed=BOOL,
        hashes=_hashes,
        version=STR,
        serial_number=STR,
        signature_algorithm=STR,
        issuer=STR,
        validity_not_before=TS,
        validity_not_after=TS,
        subject=STR,
        subject_public_key_algorithm=STR,
        subject_public_key_modulus=STR,
        subject_public_key_exponent=INT,
        x509_v3_extensions=_embedded(
            {
                **dict.fromkeys(
                    (
                        "basic_constraints",
                        "name_constraints",
                        "policy_constraints",
                        "key_usage",
                        "extended_key_usage",
                        "subject_key_identifier",
                        "authority_key_identifier",
                        "subject_alternative_name",
                        "issuer_alternative_name",
                        "subject_directory_attributes",
                        "crl_distribution_points",
                        "inhibit_any_policy",
                        "certificate_policies",
                        "policy_mappings",
                    ),
                    STR,
                ),
                "private_key_usage_period_not_before": TS,
                "private_key_usage_period_not_after": TS,
            }
        ),
    ),
}

_PE_SECTION = _embedded(
    {"name": STR, "size": NONNEG, "entropy": _number(), "hashes": _hashes}, frozenset({"name"})
)
_PE_OPTIONAL_HEADER = _embedded(
    {
        **dict.fromkeys(
            (
                "magic_hex",
                "win32_version_value_hex",
                "checksum_hex",
                "subsystem_hex",
                "dll_characteristics_hex",
                "loader_flags_hex",
            ),
            _hex,
        ),
        **dict.fromkeys(
            (
                "major_linker_version",
                "minor_linker_version",
                "size_of_code",
                "size_of_initialized_data",
                "size_of_uninitialized_data",
                "address_of_entry_point",
                "base_of_code",
                "base_of_data",
                "image_base",
                "section_alignment",
                "file_alignment",
                "major_os_version",
                "minor_os_version",
                "major_image_version",
                "minor_image_version",
                "major_subsystem_version",
                "minor_subsystem_version",
                "size_of_image",
                "size_of_headers",
                "size_of_stack_reserve",
                "size_of_stack_commit",
                "size_of_heap_reserve",
                "size_of_heap_commit",
                "number_of_rva_and_sizes",
            ),
            INT,
        ),
        "hashes": _hashes,
    }
)


def _socket_options(value: object) -> str | None:
    reason = _dictionary(value)
    if reason:
        return reason
    prefixes = ("SO_", "ICMP_", "ICMP6_", "IP_", "IPV6_", "MCAST_", "TCP_", "IRLMP_")
    for key, option in value.items():  # type: ignore[union-attr]
        if key[: key.find("_") + 1] not in prefixes or type(option) is not int:
            return _("%(name)s must be a known option prefix with an integer value") % {"name": key}
    return None


PREDEFINED_EXTENSIONS: dict[str, Checker] = {
    "archive-ext": _embedded(
        {"contains_refs": _list_of(_refs_to("directory", "file")), "comment": STR},
        frozenset({"contains_refs"}),
    ),
    "http-request-ext": _embedded(
        {
            "request_method": STR,
            "request_value": STR,
            "request_version": STR,
            "request_header": _dictionary,
            "message_body_length": INT,
            "message_body_data_ref": _refs_to("artifact"),
        },
        frozenset({"request_method", "request_value"}),
    ),
    "icmp-ext": _embedded(
        {"icmp_type_hex": _hex, "icmp_code_hex": _hex}, frozenset({"icmp_type_hex", "icmp_code_hex"})
    ),
    "ntfs-ext": _embedded(
        {
            "sid": STR,
            "alternate_data_streams": _list_of(
                _embedded({"name": STR, "hashes": _hashes, "size": INT}, frozenset({"name"}))
            ),
        }
    ),
    "pdf-ext": _embedded(
        {
            "version": STR,
            "is_optimized": BOOL,
            "document_info_dict": _dictionary,
            "pdfid0": STR,
            "pdfid1": STR,
        }
    ),
    "raster-image-ext": _embedded(
        {"image_height": INT, "image_width": INT, "bits_per_pixel": INT, "exif_tags": _dictionary}
    ),
    "socket-ext": _embedded(
        {
            "address_family": _enum(
                "AF_UNSPEC",
                "AF_INET",
                "AF_IPX",
                "AF_APPLETALK",
                "AF_NETBIOS",
                "AF_INET6",
                "AF_IRDA",
                "AF_BTH",
            ),
            "is_blocking": BOOL,
            "is_listening": BOOL,
            "options": _socket_options,
            "socket_type": _enum("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET"),
            "socket_descriptor": NONNEG,
            "socket_handle": INT,
        },
        frozenset({"address_family"}),
    ),
    "tcp-ext": _embedded({"src_flags_hex": _hex, "dst_flags_hex": _hex}),
    "unix-account-ext": _embedded({"gid": INT, "groups": STRINGS, "home_dir": STR, "shell": STR}),
    "windows-pebinary-ext": _embedded(
        {
            "pe_type": OV,
            "imphash": STR,
            "machine_hex": _hex,
            "number_of_sections": NONNEG,
            "time_date_stamp": TS,
            "pointer_to_symbol_table_hex": _hex,
            "number_of_symbols": NONNEG,
            "size_of_optional_header": NONNEG,
            "characteristics_hex": _hex,
            "file_header_hashes": _hashes,
            "optional_header": _PE_OPTIONAL_HEADER,
            "sections": _list_of(_PE_SECTION),
        },
        frozenset({"pe_type"}),
    ),
    "windows-process-ext": _embedded(
        {
            "aslr_enabled": BOOL,
            "dep_enabled": BOOL,
            "priority": STR,
            "owner_sid": STR,
            "window_title": STR,
            "startup_info": _dictionary,
            "integrity_level": _enum("low", "medium", "high", "system"),
        }
    ),
    "windows-service-ext": _embedded(
        {
            "service_name": STR,
            "descriptions": STRINGS,
            "display_name": STR,
            "group_name": STR,
            "start_type": _enum(
                "SERVICE_AUTO_START",
                "SERVICE_BOOT_START",
                "SERVICE_DEMAND_START",
                "SERVICE_DISABLED",
                "SERVICE_SYSTEM_ALERT",
            ),
            "service_dll_refs": _list_of(_refs_to("file")),
            "service_type": _enum(
                "SERVICE_KERNEL_DRIVER",
                "SERVICE_FILE_SYSTEM_DRIVER",
                "SERVICE_WIN32_OWN_PROCESS",
                "SERVICE_WIN32_SHARE_PROCESS",
            ),
            "service_status": _enum(
                "SERVICE_CONTINUE_PENDING",
                "SERVICE_PAUSE_PENDING",
                "SERVICE_PAUSED",
                "SERVICE_RUNNING",
                "SERVICE_START_PENDING",
                "SERVICE_STOP_PENDING",
                "SERVICE_STOPPED",
            ),
        }
    ),
}


def _marking_definition_rule(obj: dict) -> str | None:
    definition_type, definition = obj.get("definition_type"), obj.get("definition")
    if definition_type is None and definition is None:
        if "extensions" in obj:
            return None
        return _named("definition", _("definition_type and definition, or extensions, are required"))
    if definition_type is None or definition is None:
        return _named("definition", _("definition_type and definition go together"))
    if type(definition) is not dict:
        return _named("definition", _("must be an object"))
    if definition_type == "tlp":
        colour = definition.get("tlp")
        if colour not in TLP_V1_MARKINGS or definition.keys() != {"tlp"}:
            return _named("definition", _nested("tlp", _one_of(", ".join(TLP_V1_MARKINGS))))
        if obj["id"] != TLP_V1_MARKINGS[colour] or timestamp_key(obj["created"]) != timestamp_key(
            TLP_V1_CREATED
        ):
            return _named(
                "id", _("TLP 1.0 markings must use the identifier and created time the specification defines")
            )
    elif definition_type == "statement":
        if definition.keys() != {"statement"} or type(definition["statement"]) is not str:
            return _named(
                "definition", _("a statement marking needs exactly one string property 'statement'")
            )
    else:
        return _named("definition_type", _("must be tlp or statement (other markings use extensions)"))
    return None


def _tlp_v2_rule(obj: dict) -> str | None:
    content = obj.get("extensions", {}).get(TLP_V2_EXTENSION)
    if content is not None and content.get("tlp_2_0") not in TLP_V2_LEVELS:
        return _named("extensions", _nested("tlp_2_0", _one_of(", ".join(sorted(TLP_V2_LEVELS)))))
    return None


SCHEMAS["marking-definition"] = Schema(
    {
        "type": _string,
        "spec_version": _enum("2.1"),
        "id": _string,
        "created_by_ref": REF_IDENTITY,
        "created": TS,
        "name": STR,
        "definition_type": STR,
        "definition": lambda v: None,
        "external_references": EXTERNAL_REFERENCES,
        "object_marking_refs": _list_of(REF_MARKING),
        "granular_markings": _list_of(_granular_marking),
        "extensions": _extensions,
    },
    frozenset({"type", "spec_version", "id", "created"}),
    (_marking_definition_rule, _tlp_v2_rule),
)


def _custom_schema(obj: dict) -> Schema | None:
    """Schema for an unknown type: §7.3 new-object extensions, or a legacy ``x-`` type; else None."""
    extensions = obj.get("extensions")
    kinds = set()
    if type(extensions) is dict:
        kinds = {
            content.get("extension_type")
            for key, content in extensions.items()
            if key.startswith("extension-definition--") and type(content) is dict
        }
    if "new-sco" in kinds:
        return Schema(COMMON_SCO, SCO_REQUIRED)
    if kinds & {"new-sdo", "new-sro"}:
        return Schema(COMMON_SDO, SDO_REQUIRED, (_ordered("created", "modified"),))
    if obj["type"].startswith("x-"):
        # Legacy custom objects may be SDO-like or SCO-like: check whatever common properties appear.
        return Schema(
            {**COMMON_SCO, **COMMON_SDO}, frozenset({"type", "id"}), (_ordered("created", "modified"),)
        )
    return None


# ---------------------------------------------------------------------------------------------------
# Objects


def validate_object(obj: object, *, id_optional: bool = False) -> list[str]:
    """The errors of one STIX 2.1 object, each ``"<property>: <reason>"``; empty when it is valid.

    ``id_optional`` is for cyber-observables embedded in observed-data, which need no identifier.
    """
    if type(obj) is not dict:
        return [_named("object", _("must be a JSON object"))]
    type_ = obj.get("type")
    schema = SCHEMAS.get(type_) if type(type_) is str else None
    if schema is None:
        if not valid_type_name(type_):
            return [
                _named(
                    "type",
                    _("must be 3-250 characters of a-z, 0-9 and single hyphens, starting with a letter"),
                )
            ]
        if type_ in RESERVED_TYPES or type_ == "bundle":
            return [_named("type", _("%(type)s may not be used as an object type") % {"type": type_})]
        schema = _custom_schema(obj)
        if schema is None:
            return [_named("type", _("unknown STIX object type"))]

    errors = []
    id_ = obj.get("id")
    prefix_length = len(type_) + 2
    if not (
        type(id_) is str
        and id_.startswith(type_)
        and id_[prefix_length - 2 : prefix_length] == "--"
        and UUID_RE.match(id_, prefix_length)
    ) and not (id_optional and "id" not in obj):
        errors.append(_named("id", _("must be '%(type)s--<UUID>'") % {"type": type_}))
    # An empty string counts as missing, as stix2 counts it.
    missing = [name for name in schema.required if obj.get(name, "") == ""]
    if missing:
        errors.extend(_named(name, _("required")) for name in sorted(missing) if name != "id")
    properties = schema.properties
    for name, value in obj.items():
        checker = properties.get(name)
        if checker is None:
            if name in RESERVED_PROPERTIES or not CUSTOM_PROPERTY_RE.match(name):
                errors.append(_named(name, _("not an allowed custom property name")))
            continue
        reason = checker(value)
        if reason:
            errors.append(_named(name, reason))
    if errors:
        return errors

    for rule in schema.rules:
        reason = rule(obj)
        if reason:
            errors.append(reason)
    for marking in obj.get("granular_markings", ()):
        for selector in marking["selectors"]:
            if not _selector_resolves(obj, selector):
                unmatched = _("selector %(selector)s does not match a property") % {
                    "selector": repr(selector)
                }
                errors.append(_named("granular_markings", unmatched))
    if type_ == "indicator" and obj["pattern_type"] == "stix":
        version = obj.get("pattern_version", "2.1")
        errors.extend(
            _named("pattern", reason) for reason in pattern_errors(obj["pattern"], stix_version=version)
        )
    return errors


# ---------------------------------------------------------------------------------------------------
# Patterns

PATTERN_TOKEN_RE = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
    |(?P<ts>t'\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?Z')
    |(?P<bin>b'(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?')
    |(?P<hex>h'(?:[0-9a-fA-F]{2})*')
    |(?P<str>'(?:[^'\\]|\\['\\])*')
    |(?P<num>-?(?:0|[1-9]\d*)(?:\.\d+)?)(?![A-Za-z0-9_.'])
    |(?P<word>[A-Za-z_][A-Za-z0-9_-]*)
    |(?P<op><=|>=|!=|[=<>])
    |(?P<punct>[()\[\]:.,*])""",
    re.VERBOSE,
)
TYPE_IN_PATTERN_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
KEY_IN_PATTERN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SIMPLE_QUOTED_KEY_RE = re.compile(r"'[A-Za-z0-9_ -]+'\Z")
POSITIVE_INT_RE = re.compile(r"[1-9]\d*\Z")
INDEX_RE = re.compile(r"(?:0|[1-9]\d*)\Z")
PATTERN_KEYWORDS = frozenset(
    {
        "AND",
        "OR",
        "NOT",
        "FOLLOWEDBY",
        "LIKE",
        "MATCHES",
        "ISSUPERSET",
        "ISSUBSET",
        "EXISTS",
        "LAST",
        "IN",
        "START",
        "STOP",
        "SECONDS",
        "WITHIN",
        "REPEATS",
        "TIMES",
        "true",
        "false",
    }
)
ANY_LITERAL = frozenset({"str", "num", "bool", "bin", "hex", "ts"})
ORDERABLE_LITERAL = ANY_LITERAL - {"bool"}


class _Undecided(Exception):
    """The fast recogniser does not accept this pattern; the full grammar must decide."""


class _PatternRecogniser:
    """Accepts a conservative subset of STIX patterning; raises _Undecided on anything else.

    Every shape accepted here is accepted by the stix2patterns ANTLR grammar as well (the test suite
    checks this with generated patterns), so acceptance here is final.
    """

    def __init__(self, pattern: str):
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(pattern):
            m = PATTERN_TOKEN_RE.match(pattern, position)
            if m is None:
                raise _Undecided
            kind = m.lastgroup
            text = m.group()
            if kind == "word" and text in ("true", "false"):
                kind = "bool"
            if kind != "ws":
                self.tokens.append((kind, text))  # type: ignore[arg-type]
            position = m.end()
        self.position = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self, text: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (text is not None and token[1] != text):
            raise _Undecided
        self.position += 1
        return token

    def accept(self) -> None:
        self.observation_expressions()
        if self.peek()[0] != "end":
            raise _Undecided

    def observation_expressions(self) -> None:
        self.observation()
        while self.peek()[1] in ("AND", "OR", "FOLLOWEDBY"):
            self.take()
            self.observation()

    def observation(self) -> None:
        if self.peek()[1] == "[":
            self.take()
            self.comparison_expression()
            self.take("]")
        else:
            self.take("(")
            self.observation_expressions()
            self.take(")")
        seen: set[str] = set()
        while (keyword := self.peek()[1]) in ("WITHIN", "REPEATS", "START"):
            if keyword in seen:
                raise _Undecided
            seen.add(keyword)
            self.take()
            if keyword == "WITHIN":
                if not POSITIVE_INT_RE.match(self.take()[1]):
                    raise _Undecided
                self.take("SECONDS")
            elif keyword == "REPEATS":
                if not POSITIVE_INT_RE.match(self.take()[1]):
                    raise _Undecided
                self.take("TIMES")
            else:
                if self.take()[0] != "ts":
                    raise _Undecided
                self.take("STOP")
                if self.take()[0] != "ts":
                    raise _Undecided

    def comparison_expression(self) -> None:
        self.comparison()
        while self.peek()[1] in ("AND", "OR"):
            self.take()
            self.comparison()

    def comparison(self) -> None:
        if self.peek()[1] == "(":
            self.take()
            self.comparison_expression()
            self.take(")")
            return
        if self.peek()[1] == "EXISTS":
            self.take()
            self.object_path()
            return
        path = self.object_path()
        if self.peek()[1] == "NOT":
            self.take()
        operator = self.take()[1]
        if operator in ("=", "!="):
            literal = self.literal(ANY_LITERAL)
        elif operator in ("<", "<=", ">", ">="):
            literal = self.literal(ORDERABLE_LITERAL)
        elif operator in ("LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"):
            literal = self.literal(frozenset({"str"}))
        elif operator == "IN":
            literal = None
            self.take("(")
            self.literal(ANY_LITERAL)
            while self.peek()[1] == ",":
                self.take()
                self.literal(ANY_LITERAL)
            self.take(")")
        else:
            raise _Undecided
        self.check_hash(path, operator, literal)

    def literal(self, kinds: frozenset[str]) -> tuple[str, str]:
        token = self.take()
        if token[0] not in kinds:
            raise _Undecided
        return token

    def object_path(self) -> list[str]:
        kind, text = self.take()
        if kind != "word" or not TYPE_IN_PATTERN_RE.match(text):
            raise _Undecided
        self.take(":")
        steps = [self.path_key()]
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                steps.append(self.path_key())
            else:
                index = self.take()[1]
                if index != "*" and not INDEX_RE.match(index):
                    raise _Undecided
                self.take("]")
                steps.append("[*]" if index == "*" else "[n]")
        return steps

    def path_key(self) -> str:
        kind, text = self.take()
        if kind == "word" and KEY_IN_PATTERN_RE.match(text) and text not in PATTERN_KEYWORDS:
            return text
        if kind == "str" and SIMPLE_QUOTED_KEY_RE.match(text):
            return text[1:-1]
        raise _Undecided

    @staticmethod
    def check_hash(path: list[str], operator: str, literal: tuple[str, str] | None) -> None:
        """stix2patterns checks values compared with ``…hashes.<algorithm>``; accept only clear passes."""
        if "hashes" not in path:
            return
        last = path[-1]
        if last == "[*]":
            return
        if last == "[n]":
            raise _Undecided
        algorithm = last.upper().replace("-", "")
        if algorithm not in HASH_VALUE_RES:
            return
        if algorithm == "MD6" or operator not in ("=", "!=") or literal is None or literal[0] != "str":
            raise _Undecided
        if not HASH_VALUE_RES[algorithm].match(literal[1][1:-1]):
            raise _Undecided


def _regex_pattern_subset() -> re.Pattern[str]:
    """One regex for the commonest shapes: no parentheses, at most one qualifier per observation.

    Built from the same token rules as _PatternRecogniser and held to the same promise. It knows nothing
    of the hash-value check stix2patterns makes, so _fast_accepts keeps patterns naming ``hashes`` away
    from it; the recogniser does that check.
    """
    end_of_word = r"(?![A-Za-z0-9_-])"
    ws = r"[ \t\r\n]*"
    timestamp = (
        r"t'\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?Z'"
    )
    string = r"'(?:[^'\\]|\\['\\])*'"
    orderable = (
        rf"(?:{timestamp}|b'(?:[A-Za-z0-9+/]{{4}})+(?:[A-Za-z0-9+/]{{2}}==|[A-Za-z0-9+/]{{3}}=)?'"
        rf"|h'(?:[0-9a-fA-F]{{2}})*'|{string}|-?(?:0|[1-9]\d*)(?:\.\d+)?(?![A-Za-z0-9_.']))"
    )
    literal = rf"(?:{orderable}|(?:true|false){end_of_word})"
    key = rf"(?:(?!(?:true|false){end_of_word})[a-z_][a-z0-9_]*{end_of_word}|'[A-Za-z0-9_ -]+')"
    path = (
        rf"(?!(?:true|false){end_of_word})[a-z][a-z0-9]*(?:-[a-z0-9]+)*{ws}:{ws}{key}"
        rf"(?:{ws}(?:\.{ws}{key}|\[{ws}(?:\*|0|[1-9]\d*){ws}\]))*"
    )
    test = (
        rf"(?:EXISTS{end_of_word}{ws}{path}|{path}{ws}(?:NOT{end_of_word}{ws})?"
        rf"(?:!?={ws}{literal}|[<>]=?{ws}{orderable}"
        rf"|(?:LIKE|MATCHES|ISSUBSET|ISSUPERSET){end_of_word}{ws}{string}"
        rf"|IN{end_of_word}{ws}\({ws}{literal}(?:{ws},{ws}{literal})*{ws}\)))"
    )
    qualifier = (
        rf"(?:WITHIN{end_of_word}{ws}[1-9]\d*(?![A-Za-z0-9_.']){ws}SECONDS{end_of_word}"
        rf"|REPEATS{end_of_word}{ws}[1-9]\d*(?![A-Za-z0-9_.']){ws}TIMES{end_of_word}"
        rf"|START{end_of_word}{ws}{timestamp}{ws}STOP{end_of_word}{ws}{timestamp})"
    )
    observation = rf"\[{ws}{test}(?:{ws}(?:AND|OR){end_of_word}{ws}{test})*{ws}\](?:{ws}{qualifier})?"
    joiner = rf"(?:AND|OR|FOLLOWEDBY){end_of_word}"
    return re.compile(rf"{ws}{observation}(?:{ws}{joiner}{ws}{observation})*{ws}\Z", re.DOTALL)


SIMPLE_PATTERN_RE = _regex_pattern_subset()
# Longer patterns go to the recogniser, whose cost is linear whatever the input (regex backtracking is not)
SIMPLE_PATTERN_MAX_LENGTH = 2000


def _fast_accepts(pattern: str) -> bool:
    if (
        len(pattern) <= SIMPLE_PATTERN_MAX_LENGTH
        and "hashes" not in pattern
        and SIMPLE_PATTERN_RE.match(pattern)
    ):
        return True
    try:
        _PatternRecogniser(pattern).accept()
    except _Undecided:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _pattern_errors(pattern: str, stix_version: str) -> tuple[tuple[bool, str], ...]:
    """(crashed, what stix2patterns said or raised) per error: untranslated, so one cache serves every
    language."""
    if stix_version == "2.1" and _fast_accepts(pattern):
        return ()
    try:
        # Any version other than "2.1" selects the 2.0 grammar, as stix2 does with pattern_version.
        messages = run_validator(pattern, stix_version=stix_version)
    except Exception as exc:  # the ANTLR listeners crash on some inputs, e.g. a negative list index
        return ((True, type(exc).__name__),)
    return tuple((False, message.removeprefix("FAIL: ")) for message in messages)


def pattern_errors(pattern: str, *, stix_version: str = "2.1") -> list[str]:
    """The errors of a STIX pattern (same verdict as stix2patterns); empty when it is valid.

    stix2patterns' own messages are English; a translated sentence frames them.
    """
    if type(pattern) is not str:
        return [_("must be a string")]
    problems = _pattern_errors(pattern, stix_version)
    if not problems:
        return []
    return [
        _("not a valid STIX pattern (the validator failed with %(error)s)") % {"error": detail}
        if crashed
        else _("not a valid STIX pattern: %(details)s") % {"details": detail}
        for crashed, detail in problems
    ]


# ---------------------------------------------------------------------------------------------------
# Bundles

# Edges that do not make a reference cycle worth rejecting: provenance and markings routinely point
# both ways (an identity marked with a marking-definition that the identity created).
NON_CONTENT_REFS = frozenset({"created_by_ref", "object_marking_refs"})
# Spec property names that cannot hold a content reference; skipping them keeps the cycle check cheap.
NEVER_CONTENT_REFS = NON_CONTENT_REFS | {
    name for schema in SCHEMAS.values() for name in schema.properties if not name.endswith(("_ref", "_refs"))
}


class BundleRejected(ValueError):
    """The bundle as a whole is unusable; nothing from it may be stored."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class ParsedBundle:
    """The objects that passed, in bundle order, and one (id, version, message) per failed object.

    ``message`` joins the object's errors with "; ". ``id`` and ``version`` are None when unreadable.
    """

    objects: list[dict] = field(default_factory=list)
    failures: list[tuple[str | None, str | None, str]] = field(default_factory=list)


def _reject_constant(name: str) -> None:
    raise ValueError(_("%(constant)s is not JSON") % {"constant": name})


def nests_deeper_than(document: object, max_depth: int) -> bool:
    """True when JSON arrays/objects nest more than max_depth levels (a walk with a stack, no recursion)."""
    pending = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > max_depth:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                pending.append((child, depth + 1))
    return False


@contextlib.contextmanager
def garbage_collector_paused():
    """Pause the cyclic garbage collector while a large tree of new, live objects is built.

    json.loads and validation create hundreds of thousands of containers, none of them garbage; the
    collector would rescan them again and again (about half the run time for 50,000 objects).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@garbage_collector_paused()
def parse_bundle(raw: bytes, *, max_bytes: int, max_depth: int = 32) -> ParsedBundle:
    """Parse and validate a STIX 2.1 bundle; raise BundleRejected for problems of the whole bundle."""
    document = _load_json(raw, max_bytes=max_bytes, max_depth=max_depth, what="bundle")
    if type(document) is not dict:
        raise BundleRejected(_named("bundle", _("must be a JSON object")))
    if document.get("type") != "bundle":
        raise BundleRejected(_named("type", _("must be '%(value)s'") % {"value": "bundle"}))
    if id_type(document.get("id")) != "bundle":
        raise BundleRejected(_named("id", _("must be '%(type)s--<UUID>'") % {"type": "bundle"}))
    if "spec_version" in document:
        raise BundleRejected(
            _named("spec_version", _("this is a STIX 2.0 bundle; only STIX 2.1 is accepted"))
        )
    for name in document.keys() - {"type", "id", "objects"}:
        if not CUSTOM_PROPERTY_RE.match(name):
            raise BundleRejected(_named(name, _("not an allowed custom property name")))
    return _check_objects(document.get("objects", []))


@garbage_collector_paused()
def parse_envelope(raw: bytes, *, max_bytes: int, max_depth: int = 32) -> ParsedBundle:
    """Like parse_bundle, for the TAXII 2.1 envelope (``objects``, ``more``, ``next``) a client posts."""
    document = _load_json(raw, max_bytes=max_bytes, max_depth=max_depth, what="envelope")
    if type(document) is not dict:
        raise BundleRejected(_named("envelope", _("must be a JSON object")))
    unexpected = document.keys() - {"objects", "more", "next"}
    if unexpected:
        raise BundleRejected(_named(sorted(unexpected)[0], _("not a TAXII envelope property")))
    return _check_objects(document.get("objects", []))


def _load_json(raw: bytes, *, max_bytes: int, max_depth: int, what: str) -> object:
    """``what`` names the document in messages ("bundle", "envelope", "event"); it is not translated."""
    if len(raw) > max_bytes:
        raise BundleRejected(
            _("%(what)s is %(size)s bytes; the limit is %(limit)s bytes")
            % {"what": what, "size": len(raw), "limit": max_bytes}
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleRejected(
            _("%(what)s is not UTF-8 (byte %(position)s)") % {"what": what, "position": exc.start}
        ) from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # the C decoder's own guard, far beyond any sensible max_depth
        raise _too_deep(what, max_depth) from None
    except ValueError as exc:
        raise BundleRejected(
            _("%(what)s is not valid JSON: %(error)s") % {"what": what, "error": exc}
        ) from None
    if type(document) in (dict, list) and nests_deeper_than(document, max_depth):
        raise _too_deep(what, max_depth)
    return document


def _too_deep(what: str, max_depth: int) -> BundleRejected:
    return BundleRejected(
        _("%(what)s nests deeper than %(depth)s levels") % {"what": what, "depth": max_depth}
    )


def _check_objects(objects: object) -> ParsedBundle:
    """Validate each object, then drop later duplicates and objects on reference cycles."""
    if type(objects) is not list:
        raise BundleRejected(_named("objects", _("must be a list")))
    result = ParsedBundle()
    valid: list[dict] = []
    seen_versions: set[tuple[str, str | None]] = set()
    for obj in objects:
        errors = validate_object(obj)
        if errors:
            if type(obj) is dict:
                id_ = obj.get("id") if type(obj.get("id")) is str else None
                result.failures.append((id_, _version(obj), "; ".join(errors)))
            else:
                result.failures.append((None, None, "; ".join(errors)))
            continue
        key = (obj["id"], _version(obj))
        if key in seen_versions:
            result.failures.append((*key, _("duplicate of an earlier object in this bundle")))
            continue
        seen_versions.add(key)
        valid.append(obj)

    on_cycle = _reference_cycles(valid)
    for obj in valid:
        cycle = on_cycle.get(obj["id"])
        if cycle is None:
            result.objects.append(obj)
        else:
            on_a_cycle = _("part of a reference cycle among %(ids)s") % {"ids": cycle}
            result.failures.append((obj["id"], _version(obj), on_a_cycle))
    return result


def _version(obj: dict) -> str | None:
    version = obj.get("modified") or obj.get("created")
    return version if type(version) is str else None


def _content_refs(obj: dict) -> list[str]:
    refs = []
    for name in obj.keys() - NEVER_CONTENT_REFS:
        if name.endswith(("_ref", "_refs")):
            value = obj[name]
            if type(value) is str:
                refs.append(value)
            elif type(value) is list:
                refs.extend(ref for ref in value if type(ref) is str)
    return refs


def _reference_cycles(objects: list[dict]) -> dict[str, str]:
    """Map each id on a reference cycle to a description of its cycle (Tarjan's SCC, iterative)."""
    ids = {obj["id"] for obj in objects}
    # Only objects with references into the bundle can be on a cycle.
    graph: dict[str, list[str]] = {}
    for obj in objects:
        successors = [ref for ref in _content_refs(obj) if ref in ids]
        if successors:
            graph.setdefault(obj["id"], []).extend(successors)

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: dict[str, str] = {}
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, edge = work.pop()
            if edge == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = graph.get(node, ())
            if edge < len(successors):
                work.append((node, edge + 1))
                successor = successors[edge]
                if successor not in index:
                    work.append((successor, 0))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    component.sort()
                    shown = component[:5]
                    if len(component) > 5:
                        shown.append(_("and %(count)s more") % {"count": len(component) - 5})
                    description = ", ".join(shown)
                    for member in component:
                        cycles[member] = description
    return cycles


def check_objects(objects: object) -> ParsedBundle:
    """Validate objects that arrived already parsed (a TAXII feed's page, a converted MISP event)
    exactly as a bundle's objects are."""
    return _check_objects(objects)


def load_document(raw: bytes, *, max_bytes: int, what: str, max_depth: int = 32) -> object:
    """Parse any JSON document (a MISP event) under the same size, encoding and nesting limits."""
    return _load_json(raw, max_bytes=max_bytes, max_depth=max_depth, what=what)
