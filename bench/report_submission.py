"""Report submission over HTTP: sustained reports/s and p99 latency with 32 concurrent clients against
gunicorn on PostgreSQL, as a ratio to the same server's trivial authenticated endpoint (GET
/api/v1/me) measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/renkei_bench_http \
        .venv/bin/python bench/report_submission.py

BENCH_THREADS=4 runs gthread workers with that many threads each (default: sync workers, as the
README's deployment). One `renkei worker` runs beside the server, as in a deployment: it sends the
notifications the submissions queue and seals the audit trail they append to. On this machine it
shares the CPUs with the server and the clients; BENCH_WORKER=0 leaves it out, to measure the web
tier alone (as with the worker on other machines).

Goal (issue 3): submissions/s >= 0.5 x the /me ceiling. Clients and server share this machine, so
both figures carry the same load-generator cost; the ratio is what to compare between runs.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchdb import create_database

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
WORKERS = int(os.environ.get("BENCH_WORKERS", str(2 * (os.cpu_count() or 1))))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
WITH_WORKER = os.environ.get("BENCH_WORKER", "1") != "0"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(env: dict) -> list[str]:
    """A fresh database with one operator and a token per client; returns the tokens."""
    create_database(env["DATABASE_URL"], fresh=True)
    script = f"""
from renkei.core.referencedata import all_reference_data_load
from renkei.core.services import token_create
from renkei.directory.models import Sector
from renkei.directory.services import organization_create, user_create
all_reference_data_load()
bank = organization_create(actor=None, name_ja="ベンチ銀行", org_type="operator",
                           sectors=[Sector.objects.get(code="finance")], size="large")
for n in range({CLIENTS}):
    user = user_create(actor=None, username=f"bench{{n}}", organization=bank, role="reporter")
    print(token_create(actor=None, user=user)[1])
"""
    subprocess.run([sys.executable, "-m", "renkei", "migrate", "-v0"], env=env, check=True)
    return [line.strip() for line in renkei_shell(env, script).splitlines() if line.startswith("rk_")]


def renkei_shell(env: dict, script: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "renkei", "shell", "-c", script],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def pending_audit_records(env: dict) -> int:
    script = "from renkei.audit.models import AuditRecord as R\nprint(R.objects.filter(seq=None).count())"
    return int(renkei_shell(env, script).split()[-1])


def report_body(client: int, number: int) -> bytes:
    return json.dumps(
        {
            "title": f"ベンチマーク報告 {client}-{number}",
            "sector": "finance",
            "kind": "failure",
            "detected_at": "2026-11-25T09:00:00+09:00",
            "cause": "intentional.dos",
            "tlp": "AMBER",
            "narrative": "オンラインバンキングへのDDoS攻撃により応答が遅延。",
            "share_with_ceptoar": False,
            "observables": [{"type": "ipv4-addr", "value": "198.51.100.23"}],
        }
    ).encode()


def load(port: int, tokens: list[str], method: str, path: str, expected: int) -> tuple[int, list[float]]:
    """Every client sends requests back to back for SECONDS; returns (requests, latencies)."""
    latencies: list[list[float]] = [[] for _ in tokens]
    errors: list[str] = []
    deadline = time.monotonic() + SECONDS

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {tokens[index]}", "Content-Type": "application/json"}
        number = 0
        while time.monotonic() < deadline:
            number += 1
            body = report_body(index, number) if method == "POST" else None
            started = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies[index].append(time.perf_counter() - started)
            if response.status != expected:
                errors.append(f"{response.status} for {method} {path}")
                return

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.exit(f"unexpected answers: {errors[:3]}")
    flat = [latency for per_client in latencies for latency in per_client]
    return len(flat), flat


def main() -> None:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/renkei_bench_http")
    env["RENKEI_DATA_DIR"] = tempfile.mkdtemp(prefix="renkei-bench-")
    env["RENKEI_LOG_LEVEL"] = "ERROR"
    if not env["DATABASE_URL"].startswith("postgres"):
        sys.exit("This benchmark is about PostgreSQL: set DATABASE_URL=postgres://…")
    tokens = prepare(env)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "renkei.wsgi",
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "error",
        ],
        env=env,
        cwd=ROOT,
    )
    worker_command = [sys.executable, "-m", "renkei", "worker", "-v0"] if WITH_WORKER else None
    worker = subprocess.Popen(worker_command, env=env, cwd=ROOT) if worker_command else None
    try:
        for _attempt in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        load(port, tokens, "GET", "/api/v1/me", 200)  # warm-up: connections, caches
        rows = []
        for label, method, path, expected in (
            ("GET /api/v1/me", "GET", "/api/v1/me", 200),
            ("POST /api/v1/reports", "POST", "/api/v1/reports", 201),
        ):
            count, latencies = load(port, tokens, method, path, expected)
            rows.append((label, count / SECONDS, statistics.quantiles(latencies, n=100)[98]))
        unsealed = pending_audit_records(env)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
    print(
        f"{CLIENTS} clients, {SECONDS:.0f} s each, gunicorn with {WORKERS} workers × {THREADS} threads, "
        f"PostgreSQL, {'one' if WITH_WORKER else 'no'} task worker beside"
    )
    print(f"{'endpoint':<24}{'req/s':>10}{'p99 ms':>10}")
    for label, rate, p99 in rows:
        print(f"{label:<24}{rate:>10.1f}{p99 * 1000:>10.1f}")
    (_, ceiling, ceiling_p99), (_, submissions, submission_p99) = rows
    print(f"audit records not yet sealed when the load stopped: {unsealed}")
    print(
        f"submissions / ceiling: {submissions / ceiling:.2f} (goal >= 0.5); "
        f"p99 ratio: {submission_p99 / ceiling_p99:.2f}"
    )


if __name__ == "__main__":
    main()
