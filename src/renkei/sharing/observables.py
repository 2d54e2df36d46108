"""Validation and normalization of observables, typed with STIX 2.1 names."""

import ipaddress
import re

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils.translation import gettext as _

from renkei.sharing.choices import ObservableType

_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
_HASH_LENGTHS = {ObservableType.MD5: 32, ObservableType.SHA1: 40, ObservableType.SHA256: 64}
_url_validator = URLValidator(schemes=["http", "https", "ftp", "ftps"])


def _domain(value: str) -> str:
    try:
        ascii_name = value.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError
    return ascii_name


def _ip(value: str, version: int) -> str:
    network = ipaddress.ip_network(value, strict=False) if "/" in value else ipaddress.ip_address(value)
    if network.version != version:
        raise ValueError
    return str(network)


def _mac(value: str) -> str:
    lowered = value.lower()
    if not _MAC.match(lowered):
        raise ValueError
    digits = re.sub(r"[:-]", "", lowered)
    # STIX 2.1: lowercase, colon-delimited.
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _asn(value: str) -> str:
    number = int(value.upper().removeprefix("AS"))
    if not 0 < number < 2**32:
        raise ValueError
    return str(number)


def _hash(value: str, length: int) -> str:
    lowered = value.lower()
    if len(lowered) != length or not re.fullmatch(r"[0-9a-f]+", lowered):
        raise ValueError
    return lowered


def _url(value: str) -> str:
    _url_validator(value)
    return value


def _email(value: str) -> str:
    validate_email(value)
    return value.lower()


_NORMALIZERS = {
    ObservableType.IPV4: lambda v: _ip(v, 4),
    ObservableType.IPV6: lambda v: _ip(v, 6),
    ObservableType.DOMAIN: _domain,
    ObservableType.URL: _url,
    ObservableType.EMAIL: _email,
    ObservableType.MAC: _mac,
    ObservableType.ASN: _asn,
} | {kind: (lambda v, n=length: _hash(v, n)) for kind, length in _HASH_LENGTHS.items()}


def normalize_observable(observable_type: str, value: str) -> str:
    """The canonical form of `value`, or a ValidationError that names the type and the value."""
    value = (value or "").strip()
    normalizer = _NORMALIZERS.get(observable_type)
    if normalizer is None:
        raise ValidationError(
            _("Unknown observable type %(type)s; use one of: %(types)s")
            % {"type": observable_type, "types": ", ".join(ObservableType.values)},
            code="observable_type",
        )
    try:
        if not value or len(value) > 2048:
            raise ValueError
        return normalizer(value)
    except (ValueError, ValidationError):
        raise ValidationError(
            _("%(value)s is not a valid %(type)s.") % {"value": value[:100], "type": observable_type},
            code="observable_value",
        ) from None
