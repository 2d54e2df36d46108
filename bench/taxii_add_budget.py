"""What a 1,000-object TAXII write has to spend for Renkei to add 10x faster than medallion, against
what no write can skip, all measured in this run on this machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/renkei_bench_taxii \\
        .venv/bin/python bench/taxii_add_budget.py

1. The budget: medallion adds 10,000 indicators in 1,000-object POSTs, set up and timed as in
   taxii_vs_medallion.py; a tenth of its time per POST is what 10x allows.
2. The floor, per POST, each part alone:
   - HTTP and client: the same client posting the same envelopes to a WSGI app under gunicorn that
     reads each envelope and answers a ready-made status listing 1,000 objects;
   - checking: `parse_envelope`, the strict validation every write goes through;
   - storing: the envelope's objects loaded as `ingest` loads them into a new collection (its
     indexes and foreign key), and committed.
3. Renkei's own POSTs, as taxii_vs_medallion.py times them: what they spend above the floor is
   authentication, the access check, the collection lock, the version probe, the status, the audit
   record, the indexing task and Django itself.
"""

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from taxii2client.v21 import Collection
from taxii_vs_medallion import (
    BATCH,
    OBJECTS,
    add_all,
    envelopes,
    free_port,
    indicators,
    renkei_environment,
    start_medallion,
    start_renkei,
    wait_for,
)

BENCH = Path(__file__).resolve().parent
STUB_COLLECTION = "6f1a3c2e-8b4d-4e5f-9a7b-1c2d3e4f5a6b"
# The answer of the stand-in server: what Renkei answers for a write of BATCH new objects.
CANNED_STATUS = json.dumps(
    {
        "id": "2d0c7f3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f",
        "status": "complete",
        "request_timestamp": "2026-11-01T00:00:00.000000Z",
        "total_count": BATCH,
        "success_count": BATCH,
        "successes": [{"id": obj["id"], "version": obj["modified"]} for obj in indicators(BATCH)],
        "failure_count": 0,
        "failures": [],
        "pending_count": 0,
        "pendings": [],
    }
).encode()
COLLECTION_RESOURCE = json.dumps(
    {"id": STUB_COLLECTION, "title": "stand-in", "can_read": True, "can_write": True}
).encode()


def canned_status_app(environ, start_response):
    """A TAXII server that stores nothing: the HTTP and client share of a write."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    # The client reads the collection once, to see that it may write, before its first POST.
    body = CANNED_STATUS if environ["REQUEST_METHOD"] == "POST" else COLLECTION_RESOURCE
    start_response("202 Accepted", [("Content-Type", "application/taxii+json;version=2.1")])
    return [body]


def http_floor(bodies: list[str]) -> float:
    port = free_port()
    app, bind = "taxii_add_budget:canned_status_app", f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--workers", "2", "--bind", bind, "--chdir", str(BENCH)],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        url = f"http://127.0.0.1:{port}/collections/{STUB_COLLECTION}/"
        stand_in = Collection(url, user="bench", password="bench")  # noqa: S106 (it checks none)
        return min(add_all(stand_in, bodies) for _round in range(3))
    finally:
        server.terminate()
        server.wait(timeout=30)


def checking_floor(bodies: list[str]) -> float:
    from renkei.interop.stix_validation import parse_envelope

    raws = [body.encode() for body in bodies]
    rounds = [
        _timed(lambda: [parse_envelope(raw, max_bytes=len(raw)) for raw in raws]) for _round in range(3)
    ]
    return min(rounds)


def storing_floor(collection_id: str, bodies: list[str]) -> float:
    """Load and commit the objects of `bodies` into a new collection of the benchmark's organization."""
    from django.db import transaction

    from renkei.core.bulk import load_rows
    from renkei.interop.models import Collection as StoredCollection
    from renkei.interop.services import STORED_COLUMNS, object_version, stored_rows
    from renkei.interop.stix_validation import parse_envelope

    owner = StoredCollection.objects.get(pk=collection_id).owner
    collection = StoredCollection.objects.create(owner=owner, title="storing floor")
    added = dt.datetime.now(dt.UTC)
    loading = 0.0
    for body in bodies:
        objects = parse_envelope(body.encode(), max_bytes=len(body)).objects
        new = {(obj["id"], object_version(obj, added)): obj for obj in objects}
        newest = {stix_id: version for stix_id, version in new}
        started = time.perf_counter()
        with transaction.atomic():
            load_rows("interop_stixobject", STORED_COLUMNS, stored_rows(collection, new, newest, added))
        loading += time.perf_counter() - started
    return loading


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    env = renkei_environment()
    posts = OBJECTS // BATCH
    bodies = envelopes(indicators(OBJECTS))
    medallion, theirs = start_medallion(Path(tempfile.mkdtemp(prefix="medallion-bench-")))
    try:
        their_add = add_all(theirs, bodies)
    finally:
        medallion.terminate()
    renkei, ours = start_renkei(env)
    try:
        our_add = add_all(ours, bodies)
    finally:
        renkei.terminate()
        renkei.wait(timeout=30)
    os.environ.update(env)
    from benchdb import setup_django

    setup_django(env["DATABASE_URL"])
    collection_id = ours.url.rstrip("/").rsplit("/", 1)[1]
    other_bodies = envelopes(indicators(OBJECTS, start=OBJECTS * 100))
    floor = {
        "HTTP and client": http_floor(bodies),
        "checking": checking_floor(other_bodies),
        "storing": storing_floor(collection_id, other_bodies),
    }

    budget = their_add / 10 / posts
    print(f"medallion adds {OBJECTS} objects in {their_add:.2f} s: 10x allows {budget * 1000:.1f} ms a POST")
    for part, seconds in floor.items():
        share = seconds / posts / budget
        print(f"  floor, {part + ':':<16} {seconds / posts * 1000:6.1f} ms a POST, {share:4.0%} of that")
    floor_per_post = sum(floor.values()) / posts
    print(f"  floor in all:           {floor_per_post * 1000:6.1f} ms a POST, {floor_per_post / budget:4.0%}")
    ours_per_post = our_add / posts
    print(
        f"Renkei: {ours_per_post * 1000:.1f} ms a POST ({their_add / our_add:.1f}x medallion), "
        f"{(ours_per_post - floor_per_post) * 1000:.1f} ms above the floor; "
        f"10x leaves {(budget - floor_per_post) * 1000:.1f} ms for that"
    )


if __name__ == "__main__":
    main()
