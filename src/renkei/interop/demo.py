"""Sample STIX content for the demo community: a partner's indicators, imported into the first
demo bank's own collection as its reporter would upload them. Two of them meet the bank's demo
report (one address exactly, one inside the /25 it reported), so "Seen elsewhere" has something to
show. Fixed ids and versions: loading again stores nothing twice."""

from renkei.directory.models import Organization, User
from renkei.interop.models import StixObject
from renkei.interop.services import ingest, submissions_collection
from renkei.sharing.stix import TLP_MARKING_IDS, marking_definition

IMPORTER_ORGANIZATION = "株式会社さきがけ銀行"
IMPORTER = "finance-op1-reporter"
CREATED = "2026-11-01T00:00:00.000Z"
AMBER = TLP_MARKING_IDS["AMBER"]
PARTNER = {
    "type": "identity",
    "spec_version": "2.1",
    "id": "identity--7f0a4f0e-2c55-4c1e-9d7a-1f5b0c6d3e21",
    "created": CREATED,
    "modified": CREATED,
    "name": "金融 ISAC 連携パートナー（架空）",
    "identity_class": "organization",
    "sectors": ["financial-services"],
}
INDICATORS = [
    ("c1b0d3a2-6f4e-4b8a-9a51-0e7d2f3c4b01", "リスト型攻撃の送信元", "[ipv4-addr:value = '198.51.100.45']"),
    (
        "c1b0d3a2-6f4e-4b8a-9a51-0e7d2f3c4b02",
        "リスト型攻撃の送信元（同一レンジ）",
        "[ipv4-addr:value = '203.0.113.60']",
    ),
    (
        "c1b0d3a2-6f4e-4b8a-9a51-0e7d2f3c4b03",
        "フィッシングサイト",
        "[domain-name:value = 'login-sakigake.example.net']",
    ),
]


def _objects() -> list[dict]:
    indicators = [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{uuid}",
            "created": CREATED,
            "modified": CREATED,
            "created_by_ref": PARTNER["id"],
            "name": name,
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": CREATED,
            "indicator_types": ["malicious-activity"],
            "object_marking_refs": [AMBER],
        }
        for uuid, name, pattern in INDICATORS
    ]
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": "report--5d1e8a4c-3b2f-4e6d-8c7a-9b0f1e2d3c4a",
        "created": CREATED,
        "modified": CREATED,
        "created_by_ref": PARTNER["id"],
        "name": "金融機関を狙うリスト型攻撃の指標（架空）",
        "published": CREATED,
        "report_types": ["threat-report"],
        "object_refs": [indicator["id"] for indicator in indicators],
        "object_marking_refs": [AMBER],
    }
    return [marking_definition("AMBER"), PARTNER, *indicators, report]


def sample_stix_load() -> int:
    """Import the sample objects unless they are there; returns how many were imported (0 when they
    were, or when the demo bank or its reporter is gone)."""
    organization = Organization.objects.filter(name_ja=IMPORTER_ORGANIZATION, active=True).first()
    importer = User.objects.filter(username=IMPORTER, is_active=True).first()
    if organization is None or importer is None:
        return 0
    collection = submissions_collection(organization)
    objects = _objects()
    if StixObject.objects.filter(collection=collection, stix_id=objects[-1]["id"]).exists():
        return 0
    return ingest(collection, objects, user=importer).success_count
