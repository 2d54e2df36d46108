"""TAXII 2.1: Renkei's server against the OASIS reference server medallion (memory backend), side by
side on this machine, with the same bundles and the same client (taxii2-client): the time to POST
10,000 indicators and to GET them all back page by page. Then Renkei alone with 1,000,000 objects
stored: adding throughput and first-page latency, as ratios to its own figures at 10,000.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/renkei_bench_taxii \\
        .venv/bin/python bench/taxii_vs_medallion.py

Goals (issue 4), at 10,000 objects: adding >= 10x medallion's throughput, reading back >= 100x. At
1,000,000 stored objects: adding throughput and first-page latency within 2x of ours at 10,000.
Both servers run as their own processes (gunicorn for Renkei as deployed; medallion's own runner),
one request at a time, so each side's figure is the server's cost plus the same client cost.
BENCH_OBJECTS, BENCH_LARGE, BENCH_BATCH and BENCH_PAGE change the sizes; BENCH_MEDALLION=0 leaves
medallion out (its memory backend walks all its data for every object added, so 10,000 objects take
it many minutes), BENCH_MEDALLION_READ=0 only medallion's read-back, and BENCH_LARGE=0 the large part.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchdb import create_database
from taxii2client.v21 import Collection, Server, as_pages

OBJECTS = int(os.environ.get("BENCH_OBJECTS", "10000"))
LARGE = int(os.environ.get("BENCH_LARGE", "1000000"))
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))  # objects per POST
PAGE = int(os.environ.get("BENCH_PAGE", "1000"))  # objects per GET
WITH_MEDALLION = os.environ.get("BENCH_MEDALLION", "1") != "0"
# medallion reads back 10,000 objects in well over an hour (it rescans everything per object).
MEDALLION_READ = os.environ.get("BENCH_MEDALLION_READ", "1") != "0"
ROOT = Path(__file__).resolve().parent.parent
MEDALLION_COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
MEDALLION_PASSWORD = "bench"  # noqa: S105 (a throwaway server on 127.0.0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int) -> None:
    for _attempt in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing answers on port {port}")


def indicators(count: int, start: int = 0) -> list[dict]:
    return [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, f'bench/{number}')}",
            "created": "2026-11-01T00:00:00.000Z",
            "modified": "2026-11-01T00:00:00.000Z",
            "name": f"C2 {number}",
            "pattern": f"[ipv4-addr:value = '10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}']",
            "pattern_type": "stix",
            "valid_from": "2026-11-01T00:00:00Z",
        }
        for number in range(start, start + count)
    ]


def envelopes(objects: list[dict]) -> list[str]:
    return [json.dumps({"objects": objects[i : i + BATCH]}) for i in range(0, len(objects), BATCH)]


def add_all(collection: Collection, bodies: list[str]) -> float:
    started = time.perf_counter()
    for body in bodies:
        status = collection.add_objects(body)
        if status.failure_count:
            sys.exit(f"the server refused objects: {status.failures[:3]}")
    return time.perf_counter() - started


def read_all(collection: Collection) -> tuple[float, int]:
    started = time.perf_counter()
    pages = as_pages(collection.get_objects, per_request=PAGE)
    received = sum(len(page.get("objects", [])) for page in pages)
    return time.perf_counter() - started, received


def analyze(env: dict) -> None:
    """Refresh the planner's statistics, as autovacuum does; this machine's PostgreSQL runs with
    autovacuum off, and stale statistics would have the first page sorted from the whole collection."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as connection:
        connection.execute("ANALYZE interop_stixobject")


def first_page(collection: Collection, rounds: int = 20) -> float:
    times = []
    for _round in range(rounds):
        started = time.perf_counter()
        collection.get_objects(limit=PAGE)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def start_medallion(workdir: Path) -> tuple[subprocess.Popen, Collection]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = {
        "/discovery": {
            "title": "medallion",
            "default": f"{base}/bench/",
            "api_roots": [f"{base}/bench/"],
        },
        "bench": {
            "information": {
                "title": "bench",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 1_000_000_000,
            },
            "status": [],
            "collections": [
                {
                    "id": MEDALLION_COLLECTION,
                    "title": "bench",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    (workdir / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(workdir / "data.json"),
        },
        "users": {"bench": MEDALLION_PASSWORD},
        "taxii": {"max_page_size": PAGE},
    }
    (workdir / "medallion.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "medallion.scripts.run", "--port", str(port), str(workdir / "medallion.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(port)
    url = f"{base}/bench/collections/{MEDALLION_COLLECTION}/"
    return process, Collection(url, user="bench", password=MEDALLION_PASSWORD)


def start_renkei(env: dict) -> tuple[subprocess.Popen, Collection]:
    create_database(env["DATABASE_URL"], fresh=True)
    subprocess.run([sys.executable, "-m", "renkei", "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    script = """
from renkei.core.referencedata import all_reference_data_load
from renkei.core.services import token_create
from renkei.directory.models import Sector
from renkei.directory.services import organization_create, user_create
from renkei.interop.services import submissions_collection
all_reference_data_load()
bank = organization_create(actor=None, name_ja="ベンチ銀行", org_type="operator",
                           sectors=[Sector.objects.get(code="finance")], size="large")
user = user_create(actor=None, username="bench", organization=bank, role="officer")
print("TOKEN", token_create(actor=None, user=user)[1], submissions_collection(bank).pk)
"""
    output = subprocess.run(
        [sys.executable, "-m", "renkei", "shell", "-c", script],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    created = next(line for line in output.splitlines() if line.startswith("TOKEN"))
    _label, token, collection_id = created.split()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "renkei.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    wait_for(port)
    assert Server(f"http://127.0.0.1:{port}/taxii2/", user="bench", password=token).api_roots  # warm-up
    url = f"http://127.0.0.1:{port}/taxii2/api/collections/{collection_id}/"
    return process, Collection(url, user="bench", password=token)


def renkei_environment() -> dict:
    """The environment Renkei's processes run in: PostgreSQL, and a data directory of their own."""
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/renkei_bench_taxii")
    env["RENKEI_DATA_DIR"] = tempfile.mkdtemp(prefix="renkei-bench-")
    env["RENKEI_LOG_LEVEL"] = "ERROR"
    if not env["DATABASE_URL"].startswith("postgres"):
        sys.exit("This benchmark is about PostgreSQL: set DATABASE_URL=postgres://…")
    return env


def main() -> None:
    env = renkei_environment()
    bodies = envelopes(indicators(OBJECTS))
    medallion, theirs = start_medallion(Path(tempfile.mkdtemp(prefix="medallion-bench-")))
    renkei, ours = start_renkei(env)
    try:
        rows = {}
        servers = (("medallion", theirs), ("Renkei", ours)) if WITH_MEDALLION else (("Renkei", ours),)
        for label, collection in servers:
            added = add_all(collection, bodies)
            if label == "medallion" and not MEDALLION_READ:
                rows[label] = (added, None, None)
                print(f"{label:<10} add {OBJECTS} objects: {added:8.2f} s   read back: not measured")
                continue
            if label == "Renkei":
                analyze(env)
            read, received = read_all(collection)
            if received != OBJECTS:
                sys.exit(f"{label} gave back {received} objects, not {OBJECTS}")
            rows[label] = (added, read, first_page(collection, rounds=5))
            print(f"{label:<10} add {OBJECTS} objects: {added:8.2f} s   read back: {read:8.2f} s", flush=True)
        medallion.terminate()
        our_add, our_read, our_first = rows["Renkei"]
        if WITH_MEDALLION:
            their_add, their_read, _first = rows["medallion"]
            print(f"adding:  Renkei / medallion throughput {their_add / our_add:8.1f}x (goal >= 10)")
            if their_read is not None:
                print(f"reading: Renkei / medallion speed      {their_read / our_read:8.1f}x (goal >= 100)")
        if not LARGE:
            return

        # Grow Renkei's collection to LARGE objects, then add and read as at OBJECTS.
        filled = OBJECTS
        started = time.perf_counter()
        while filled < LARGE:
            batch = indicators(min(BATCH * 10, LARGE - filled), start=OBJECTS * 10 + filled)
            add_all(ours, envelopes(batch))
            filled += len(batch)
            if filled % 100_000 < BATCH * 10:
                print(f"  {filled} objects stored ({time.perf_counter() - started:.0f} s)", flush=True)
        analyze(env)
        large_add = add_all(ours, envelopes(indicators(OBJECTS, start=LARGE * 10)))
        large_first = first_page(ours)
        small_rate, large_rate = OBJECTS / our_add, OBJECTS / large_add
        print(
            f"Renkei at {LARGE + OBJECTS} objects: adding {large_rate:.0f} objects/s "
            f"(at {OBJECTS}: {small_rate:.0f}), ratio {small_rate / large_rate:.2f} (goal <= 2)"
        )
        print(
            f"first page of {PAGE}: {large_first * 1000:.1f} ms (at {OBJECTS}: {our_first * 1000:.1f} ms), "
            f"ratio {large_first / our_first:.2f} (goal <= 2)"
        )
    finally:
        medallion.terminate()
        renkei.terminate()
        renkei.wait(timeout=30)


if __name__ == "__main__":
    main()
