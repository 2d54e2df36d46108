"""STIX import of a 50,000-object bundle on PostgreSQL (parsed, validated and stored; the correlation
indexing it queues runs after it in a background task, timed separately) as a ratio to `stix2.parse`
of the same bundle alone, measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/renkei_bench_import \\
        .venv/bin/python bench/stix_import.py [--profile]

Goal (issue 4): stix2.parse / import >= 10, with validation at least as strict (the strictness is
shown by the tests of stix_validation; here every object is valid, checked with stix2-validator on a
sample and by both parsers accepting the whole bundle). The bundle is mostly indicators with STIX
patterns over varied observables (some AND/OR, some over two observations), plus identities,
malware, relationships and reports, all with a TLP marking. Each round imports into the submissions
collection of a new organization, so nothing is deduplicated away. BENCH_OBJECTS changes the size,
BENCH_ROUNDS the rounds; stix2.parse is timed on the whole bundle unless that would take more than
about three minutes, in which case it is timed on a tenth and scaled (the output says so).
`--profile` prints where the import spends its time.
"""

import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
import uuid

from benchdb import create_database, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/renkei_bench_import"
OBJECTS = int(os.environ.get("BENCH_OBJECTS", "50000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BASELINE_BUDGET = 180  # seconds stix2.parse may take for the whole bundle before it is sampled
TLP_AMBER = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
CREATED = "2026-11-01T09:00:00.000Z"


def _id(kind: str) -> str:
    return f"{kind}--{uuid.UUID(int=random.getrandbits(128), version=4)}"


def _common(kind: str, author: str | None) -> dict:
    obj = {
        "type": kind,
        "spec_version": "2.1",
        "id": _id(kind),
        "created": CREATED,
        "modified": CREATED,
        "object_marking_refs": [TLP_AMBER],
    }
    if author:
        obj["created_by_ref"] = author
    return obj


def _address() -> str:
    return (
        f"{random.randint(20, 99)}.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    )


def _domain() -> str:
    host = random.choice(["login", "cdn", "update", "mail"])
    return f"{host}{random.randrange(10**6)}.example-{random.randrange(500)}.jp"


def _comparison() -> str:
    """One comparison of an observable, of the kinds threat feeds carry."""
    kind = random.random()
    if kind < 0.35:
        return f"ipv4-addr:value = '{_address()}'"
    if kind < 0.6:
        return f"domain-name:value = '{_domain()}'"
    if kind < 0.75:
        return (
            f"url:value = 'https://{_domain()}/{uuid.UUID(int=random.getrandbits(128)).hex[:10]}/index.php'"
        )
    if kind < 0.88:
        return f"file:hashes.'SHA-256' = '{random.getrandbits(256):064x}'"
    if kind < 0.95:
        return f"file:hashes.MD5 = '{random.getrandbits(128):032x}'"
    if kind < 0.98:
        return f"ipv4-addr:value ISSUBSET '{_address().rsplit('.', 1)[0]}.0/24'"
    return f"email-addr:value = 'attacker{random.randrange(10**5)}@example-{random.randrange(500)}.jp'"


def _pattern() -> str:
    shape = random.random()
    if shape < 0.8:
        return f"[{_comparison()}]"
    if shape < 0.9:
        return f"[{_comparison()} OR {_comparison()}]"
    if shape < 0.95:
        return f"[{_comparison()} AND {_comparison()}]"
    return f"[{_comparison()}] AND [{_comparison()}] WITHIN 600 SECONDS"


def bundle(size: int) -> dict:
    """A valid bundle of `size` objects: 0.1 % identities, 1 % malware, 0.1 % reports (100 refs each),
    20 % relationships (indicator indicates malware), the rest indicators."""
    random.seed(size)
    identities = [
        _common("identity", None) | {"name": f"CSIRT {n}", "identity_class": "organization"}
        for n in range(max(1, size // 1000))
    ]
    malware = [
        _common("malware", random.choice(identities)["id"])
        | {
            "name": f"Family {n}",
            "is_family": True,
            "malware_types": [random.choice(["ransomware", "trojan"])],
        }
        for n in range(max(1, size // 100))
    ]
    reports_count = max(1, size // 1000)
    relationships_count = size // 5
    indicators = []
    for n in range(size - len(identities) - len(malware) - reports_count - relationships_count):
        indicators.append(
            _common("indicator", random.choice(identities)["id"])
            | {
                "name": f"Indicator {n}",
                "indicator_types": ["malicious-activity"],
                "pattern": _pattern(),
                "pattern_type": "stix",
                "valid_from": CREATED,
            }
        )
    relationships = [
        _common("relationship", random.choice(identities)["id"])
        | {
            "relationship_type": "indicates",
            "source_ref": random.choice(indicators)["id"],
            "target_ref": random.choice(malware)["id"],
        }
        for _n in range(relationships_count)
    ]
    reports = [
        _common("report", random.choice(identities)["id"])
        | {
            "name": f"Campaign report {n}",
            "report_types": ["threat-report"],
            "published": CREATED,
            "object_refs": [obj["id"] for obj in random.sample(indicators + malware, 100)],
        }
        for n in range(reports_count)
    ]
    objects = identities + malware + indicators + relationships + reports
    return {"type": "bundle", "id": _id("bundle"), "objects": objects}


def check_sample(document: dict) -> None:
    """One object of each kind, and 200 indicators, pass stix2-validator."""
    from stix2validator import validate_instance

    by_kind = {}
    for obj in document["objects"]:
        by_kind.setdefault(obj["type"], obj)
    sample = list(by_kind.values()) + random.sample(
        [obj for obj in document["objects"] if obj["type"] == "indicator"], 200
    )
    for obj in sample:
        result = validate_instance(obj)
        if not result.is_valid:
            sys.exit(f"generated object is not valid STIX: {obj['id']}: {[e.message for e in result.errors]}")
    print(f"checked {len(sample)} generated objects with stix2-validator: valid", flush=True)


def _timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> None:
    create_database(os.environ.get("DATABASE_URL", DEFAULT_URL), fresh=True)
    setup_django(DEFAULT_URL)
    import stix2

    from renkei.directory.models import Organization
    from renkei.interop.models import StixObject
    from renkei.interop.services import (
        MAX_BUNDLE_BYTES,
        import_bundle,
        index_stored_objects,
        submissions_collection,
    )
    from renkei.interop.stix_validation import parse_bundle

    document = bundle(OBJECTS)
    text = json.dumps(document)
    raw = text.encode()
    counts = {}
    for obj in document["objects"]:
        counts[obj["type"]] = counts.get(obj["type"], 0) + 1
    print(f"bundle: {len(document['objects']):,} objects, {len(raw) / 2**20:.1f} MiB: {counts}", flush=True)
    check_sample(document)

    # stix2.parse of the whole bundle, or of a tenth of it when the whole would take too long.
    part = {"type": "bundle", "id": document["id"], "objects": document["objects"][::10]}
    part_seconds, _parsed = _timed(stix2.parse, json.dumps(part), allow_custom=True)
    scale = 1
    baseline_text = text
    if part_seconds * 10 > BASELINE_BUDGET:
        scale = len(document["objects"]) / len(part["objects"])
        baseline_text = json.dumps(part)
        print(
            f"stix2.parse of {len(part['objects']):,} objects took {part_seconds:.0f} s: timing it on those"
            f" and scaling by {scale:.1f}",
            flush=True,
        )

    def new_collection(number: int):
        organization = Organization.objects.create(
            type="operator", name_ja=f"ベンチ取込 {number}-{uuid.uuid4().hex[:6]}", size="sme"
        )
        return submissions_collection(organization)

    ours, parsing, baseline, indexing = [], [], [], []
    for number in range(ROUNDS):
        seconds, parsed = _timed(parse_bundle, raw, max_bytes=MAX_BUNDLE_BYTES)
        parsing.append(seconds)
        if parsed.failures:
            sys.exit(f"parse_bundle rejected generated objects: {parsed.failures[:3]}")
        collection = new_collection(number)
        seconds, status = _timed(import_bundle, collection, raw, user=None)
        ours.append(seconds)
        stored = StixObject.objects.filter(collection=collection).count()
        if status.failure_count or stored != len(document["objects"]):
            sys.exit(f"import stored {stored} objects, {status.failure_count} failures")
        added = StixObject.objects.filter(collection=collection).values_list("date_added", flat=True)[0]
        seconds, _indexed = _timed(index_stored_objects, str(collection.pk), added.isoformat())
        indexing.append(seconds)
        seconds, _parsed = _timed(stix2.parse, baseline_text, allow_custom=True)
        baseline.append(seconds * scale)
        print(
            f"round {number + 1}: import {ours[-1]:.2f} s (parse+validate {parsing[-1]:.2f} s), "
            f"stix2.parse {baseline[-1]:.2f} s{' (scaled)' if scale != 1 else ''}",
            flush=True,
        )
    import_seconds, parse_seconds = statistics.median(ours), statistics.median(parsing)
    stix2_seconds = statistics.median(baseline)
    print(
        f"median import {import_seconds:.2f} s = parse+validate {parse_seconds:.2f} s"
        f" + store {import_seconds - parse_seconds:.2f} s"
    )
    print(f"then, in the background task, correlation indexing: median {statistics.median(indexing):.2f} s")
    print(f"median stix2.parse {stix2_seconds:.2f} s{' (scaled from a tenth)' if scale != 1 else ''}")
    print(f"stix2.parse / import: {stix2_seconds / import_seconds:.1f} (goal >= 10)")
    print(f"stix2.parse / parse+validate alone: {stix2_seconds / parse_seconds:.1f}")

    if "--profile" in sys.argv:
        profile = cProfile.Profile()
        collection = new_collection(ROUNDS)
        profile.runcall(import_bundle, collection, raw, user=None)
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(20)
        print(out.getvalue())


if __name__ == "__main__":
    main()
