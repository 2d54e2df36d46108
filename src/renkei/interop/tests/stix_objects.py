"""STIX objects for tests, valid unless a test breaks them on purpose."""

import uuid

INDICATOR_NAMESPACE = uuid.UUID("4b1e1f0e-7a0f-4a59-9d48-3f4c8d3b2a11")


def indicator(number: int, *, modified: str = "2026-11-01T00:00:00.000Z", **extra) -> dict:
    """The indicator for 198.51.100.<number % 256>, with an id fixed by `number`."""
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid5(INDICATOR_NAMESPACE, str(number))}",
        "created": "2026-11-01T00:00:00.000Z",
        "modified": modified,
        "name": f"C2 server {number}",
        "pattern": f"[ipv4-addr:value = '198.51.100.{number % 256}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-01T00:00:00Z",
        "indicator_types": ["malicious-activity"],
    } | extra


def bundle(*objects: dict) -> dict:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}
