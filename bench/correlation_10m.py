"""Correlation at 10,000,000 stored observables on PostgreSQL: the median time to correlate one new
observable and to index one, each as a ratio to a single-row primary-key lookup through the ORM
measured in the same run, and the storage taken per observable at 1M, 5M and 10M sightings.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/renkei_bench_corr \\
        .venv/bin/python bench/correlation_10m.py [--fresh]

Goal (issue 4): storage grows linearly with observables, never with pairs (bytes per observable stays
flat from 1M to 10M), and a lookup costs a few index lookups whatever is stored. The sightings are
generated inside PostgreSQL, exactly as `index_sightings` would write them (checked on a sample), on
the first run (10-20 minutes) and reused afterwards; `--fresh` rebuilds them. BENCH_SIGHTINGS changes
the total, BENCH_ROUNDS the number of timed rounds.
"""

import hashlib
import ipaddress
import os
import random
import statistics
import sys
import time
import uuid

from benchdb import create_database, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/renkei_bench_corr"
SIGHTINGS = int(os.environ.get("BENCH_SIGHTINGS", "10000000"))
# Sizes are recorded after each of these shares of the total.
STEPS = (0.1, 0.5, 1.0)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PER_SOURCE = 8  # observables held by one report or STIX object
POPULAR_EVERY = 50_000  # one sighting in this many holds the same popular address
POPULAR_VALUE = 7
REPEAT_EVERY = 4  # one sighting in four holds a value an earlier source holds
REPEAT_DISTANCE = 101

# Sighting n holds value number v (see `_value_number`); v's type and text follow from v % 100:
# 45 % IPv4 addresses, 30 % domains, 10 % URLs, 8 % SHA-256, 5 % MD5, 2 % CIDR ranges (/24, /28).
BATCH_SQL = f"""
CREATE TEMP TABLE bench_batch AS
WITH numbered AS (
    SELECT n, n / {PER_SOURCE} AS src,
           CASE WHEN n %% {POPULAR_EVERY} = 25 THEN {POPULAR_VALUE}
                WHEN n %% {REPEAT_EVERY} = 0 AND n > {REPEAT_DISTANCE} THEN n - {REPEAT_DISTANCE}
                ELSE n END AS v
    FROM generate_series(%s, %s) n
), typed AS (
    SELECT n, src, v, v %% 100 AS bucket,
           CASE WHEN v %% 100 < 45 THEN (20::bigint << 24) + v * 3
                WHEN v %% 100 >= 98 THEN (45::bigint << 24) + ((v / 100) * 2 + v %% 100 - 98) * 256
           END AS address,
           CASE WHEN v %% 100 = 98 THEN 24 WHEN v %% 100 = 99 THEN 28 ELSE 32 END AS prefix
    FROM numbered
), valued AS (
    SELECT n, src,
           CASE WHEN src %% 10 = 0 THEN 'advisory' WHEN src %% 10 < 5 THEN 'report' ELSE 'stix' END
               AS source_kind,
           CASE WHEN bucket < 45 OR bucket >= 98 THEN 'ipv4-addr'
                WHEN bucket < 75 THEN 'domain-name'
                WHEN bucket < 85 THEN 'url'
                WHEN bucket < 93 THEN 'file:hashes.SHA-256'
                ELSE 'file:hashes.MD5' END AS type,
           CASE WHEN bucket < 45 THEN host('0.0.0.0'::inet + address)
                WHEN bucket >= 98 THEN host('0.0.0.0'::inet + address) || '/' || prefix
                WHEN bucket < 75 THEN 'n' || v || '.bench' || v %% 997 || '.jp'
                WHEN bucket < 85 THEN 'https://shop' || v %% 9973 || '.example.jp/login/' || v
                                      || '.php?session=' || md5(v::text)
                WHEN bucket < 93 THEN encode(sha256(int8send(v)), 'hex')
                ELSE md5('file' || v) END AS value,
           CASE WHEN address IS NOT NULL THEN '4' || lpad(to_hex(address), 8, '0') END AS ip_low,
           CASE WHEN address IS NOT NULL
                THEN '4' || lpad(to_hex(address + (1::bigint << (32 - prefix)) - 1), 8, '0') END AS ip_high
    FROM typed
)
SELECT n, source_kind,
       CASE WHEN source_kind = 'stix' THEN src::text ELSE md5('source' || src)::uuid::text END AS source_id,
       type, value, ip_low, ip_high,
       encode(sha256(convert_to(type, 'UTF8') || '\\x00'::bytea || convert_to(value, 'UTF8')), 'hex') AS key
FROM valued
"""  # noqa: S608 (module constants only)


def _value(v: int) -> tuple[str, str]:
    """Value number `v` as the generator writes it, so lookups can aim at stored values."""
    bucket = v % 100
    if bucket < 45:
        return "ipv4-addr", str(ipaddress.IPv4Address((20 << 24) + v * 3))
    if bucket >= 98:
        address = ipaddress.IPv4Address((45 << 24) + ((v // 100) * 2 + bucket - 98) * 256)
        return "ipv4-addr", f"{address}/{24 if bucket == 98 else 28}"
    if bucket < 75:
        return "domain-name", f"n{v}.bench{v % 997}.jp"
    if bucket < 85:
        md5 = hashlib.md5(str(v).encode(), usedforsecurity=False).hexdigest()
        return "url", f"https://shop{v % 9973}.example.jp/login/{v}.php?session={md5}"
    if bucket < 93:
        return "file:hashes.SHA-256", hashlib.sha256(v.to_bytes(8, "big", signed=True)).hexdigest()
    return "file:hashes.MD5", hashlib.md5(f"file{v}".encode(), usedforsecurity=False).hexdigest()


def _stored_value_number(limit: int) -> int:
    """A value number some generated sighting holds (numbers divisible by four never are)."""
    while True:
        v = random.randrange(1, limit)
        if v % REPEAT_EVERY and v % POPULAR_EVERY != 25:
            return v


def _sizes() -> tuple[int, int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM correlation_sighting),
                   (SELECT count(*) FROM correlation_correlationkey),
                   pg_total_relation_size('correlation_sighting')
                   + pg_total_relation_size('correlation_correlationkey')
            """
        )
        return cursor.fetchone()


def _print_size(sightings: int, keys: int, size: int) -> None:
    print(
        f"  {sightings:>12,} sightings {keys:>12,} values {size / 2**20:>9,.0f} MiB"
        f"  {size / sightings:6.0f} bytes/sighting"
    )


def _secondary_indexes(cursor) -> list[tuple[str, str, str]]:
    """(statement to drop it, statement to create it again) for every index but the primary keys."""
    cursor.execute(
        """
        SELECT 'ALTER TABLE ' || c.conrelid::regclass::text || ' DROP CONSTRAINT ' || quote_ident(c.conname),
               'ALTER TABLE ' || c.conrelid::regclass::text || ' ADD CONSTRAINT ' || quote_ident(c.conname)
               || ' ' || pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.conrelid IN ('correlation_sighting'::regclass, 'correlation_correlationkey'::regclass)
          AND c.contype = 'u'
        """
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT 'DROP INDEX ' || quote_ident(i.indexname), i.indexdef FROM pg_indexes i
        WHERE i.tablename IN ('correlation_sighting', 'correlation_correlationkey')
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """
    )
    return constraints + cursor.fetchall()


def fill() -> list[tuple[int, int, int]]:
    """Generate the sightings step by step; the (sightings, keys, bytes) measured after each step."""
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_corr_sizes') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute("SELECT max(sightings) FROM bench_corr_sizes")
            if cursor.fetchone()[0] == SIGHTINGS:
                cursor.execute("SELECT sightings, keys, bytes FROM bench_corr_sizes ORDER BY sightings")
                return cursor.fetchall()
    # A partial fill may have stopped with its indexes dropped: start again from an empty database.
    connection.close()
    create_database(os.environ["DATABASE_URL"], fresh=True)
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_corr_sizes (sightings bigint PRIMARY KEY, keys bigint, bytes bigint)"
        )
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SET work_mem = '256MB'")
        indexes = _secondary_indexes(cursor)
        first = 1
        for share in STEPS:
            last = int(SIGHTINGS * share)
            started = time.perf_counter()
            # Bulk loading: the secondary indexes are built after each step rather than grown row by
            # row (the same definitions, read from the catalogue, so the sizes are those of the app).
            for drop, _create in indexes:
                cursor.execute(drop)
            cursor.execute("DROP TABLE IF EXISTS bench_batch")
            cursor.execute(BATCH_SQL, [first, last])
            cursor.execute(
                """
                INSERT INTO correlation_sighting (source_kind, source_id, key, type, value, created_at)
                SELECT source_kind, source_id, key, type, value, now() FROM bench_batch ORDER BY n
                """
            )
            # The key's primary index stays: counts of values already held are added to.
            cursor.execute(
                """
                INSERT INTO correlation_correlationkey (key, type, ip_low, ip_high, source_count)
                SELECT key, min(type), min(ip_low), min(ip_high), count(*) FROM bench_batch
                GROUP BY key ORDER BY key
                ON CONFLICT (key) DO UPDATE
                SET source_count = correlation_correlationkey.source_count + excluded.source_count
                """
            )
            cursor.execute("DROP TABLE bench_batch")
            for _drop, create in indexes:
                cursor.execute(create)
            cursor.execute("VACUUM ANALYZE correlation_sighting")
            cursor.execute("VACUUM ANALYZE correlation_correlationkey")
            sightings, keys, size = _sizes()
            cursor.execute("INSERT INTO bench_corr_sizes VALUES (%s, %s, %s)", [sightings, keys, size])
            print(
                f"generated {sightings:,} sightings ({keys:,} distinct values) "
                f"in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            first = last + 1
        cursor.execute("SELECT sightings, keys, bytes FROM bench_corr_sizes ORDER BY sightings")
        return cursor.fetchall()


def check_sample() -> None:
    """The generated rows are what the application would write for the same values."""
    from renkei.correlation.indicators import indicator
    from renkei.correlation.models import CorrelationKey, Sighting

    sample = list(Sighting.objects.order_by("pk")[:400]) + list(
        Sighting.objects.filter(pk__in=random.sample(range(1, SIGHTINGS), 200))
    )
    for sighting in sample:
        found = indicator(sighting.type, sighting.value)
        stored = CorrelationKey.objects.get(key=sighting.key)
        held = Sighting.objects.filter(key=sighting.key).count()
        if (found.value, found.key, found.ip_low, found.ip_high, held) != (
            sighting.value,
            sighting.key,
            stored.ip_low,
            stored.ip_high,
            stored.source_count,
        ):
            sys.exit(f"generated row differs from what Renkei writes: {sighting!r} {stored!r}")
    print(f"checked {len(sample)} generated sightings against indicator(): identical", flush=True)


def lookups(stored_values: int) -> dict[str, list[tuple[str, str]]]:
    """New observables to correlate, by what they meet."""
    found: dict[str, list[tuple[str, str]]] = {
        "stored value": [],
        "address in a stored range": [],
        "range over stored addresses": [],
        "miss": [],
    }
    while len(found["stored value"]) < 80:
        found["stored value"].append(_value(_stored_value_number(stored_values)))
    while len(found["address in a stored range"]) < 40:
        v = _stored_value_number(stored_values)
        if v % 100 >= 98:
            network = ipaddress.ip_network(_value(v)[1])
            found["address in a stored range"].append(("ipv4-addr", str(network[random.randrange(1, 15)])))
    while len(found["range over stored addresses"]) < 20:
        # A /24 among the generated addresses, one in three of which is stored.
        address = ipaddress.IPv4Address((20 << 24) + random.randrange(stored_values) * 3)
        found["range over stored addresses"].append(
            ("ipv4-addr", str(ipaddress.ip_network(f"{address}/24", strict=False)))
        )
    for _ in range(15):
        found["miss"].append(("domain-name", f"new-{uuid.uuid4().hex[:12]}.example.net"))
        found["miss"].append(
            ("ipv4-addr", str(ipaddress.IPv4Address((60 << 24) + random.randrange(1 << 24))))
        )
        found["miss"].append(("file:hashes.SHA-256", hashlib.sha256(uuid.uuid4().bytes).hexdigest()))
    return found


def _timed(function, *args, **kwargs) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def main() -> None:
    if "--fresh" in sys.argv:
        create_database(os.environ.get("DATABASE_URL", DEFAULT_URL), fresh=True)
    setup_django(DEFAULT_URL)
    random.seed(4)
    steps = fill()
    check_sample()

    from renkei.correlation.indicators import indicator
    from renkei.correlation.models import CorrelationKey
    from renkei.correlation.services import correlate, forget_sightings, index_sightings

    print("\nstorage (sightings + distinct values, tables and indexes), when each step was generated:")
    for sightings, keys, size in steps:
        _print_size(sightings, keys, size)
    # Measured again on every run, so a schema change since the fill shows (its steps are not redone).
    print("and as stored now:")
    _print_size(*_sizes())
    first_rate, last_rate = steps[0][2] / steps[0][0], steps[-1][2] / steps[-1][0]
    print(
        f"bytes per sighting at {steps[-1][0]:,} / at {steps[0][0]:,}: {last_rate / first_rate:.2f}"
        " (linear growth: ~1)"
    )

    stored_values = steps[-1][0]
    targets = lookups(stored_values)
    keys = [indicator(*_value(_stored_value_number(stored_values))).key for _ in range(50)]
    times: dict[str, list[float]] = {kind: [] for kind in targets}
    baseline: list[float] = []
    sources: dict[str, list[int]] = {kind: [] for kind in targets}
    for _round in range(ROUNDS):
        for kind, observables in targets.items():
            for observable in observables:
                # Interleaved with the baseline, so that both see the same machine.
                baseline.append(
                    _timed(lambda: CorrelationKey.objects.filter(key=random.choice(keys)).first())
                )
                started = time.perf_counter()
                sources[kind].append(len(correlate(*observable)))
                times[kind].append(time.perf_counter() - started)
    pk_lookup = statistics.median(baseline)
    every = [t for kind_times in times.values() for t in kind_times]
    print(f"\ncorrelate() of a new observable, {ROUNDS} rounds (median; sources found):")
    for kind, kind_times in times.items():
        median = statistics.median(kind_times)
        print(
            f"  {kind:<28} {median * 1000:7.2f} ms  x{median / pk_lookup:5.1f}"
            f"  sources {min(sources[kind])}-{max(sources[kind])}"
        )
    print(f"  primary-key lookup (ORM)     {pk_lookup * 1000:7.2f} ms")
    print(f"median correlate / PK lookup: {statistics.median(every) / pk_lookup:.1f}")

    indexing, baseline = [], []
    new_sources = []
    for number in range(ROUNDS * 40):
        source_id = str(uuid.uuid4())
        new_sources.append(source_id)
        observable = (
            _value(_stored_value_number(stored_values))
            if number % 2
            else ("domain-name", f"new-{source_id[:12]}.example.net")
        )
        baseline.append(_timed(lambda: CorrelationKey.objects.filter(key=random.choice(keys)).first()))
        indexing.append(_timed(index_sightings, "report", source_id, [observable]))
    forget_sightings("report", new_sources)
    print(
        f"index_sightings() of one new observable: {statistics.median(indexing) * 1000:.2f} ms, "
        f"x{statistics.median(indexing) / statistics.median(baseline):.1f} a PK lookup"
    )


if __name__ == "__main__":
    main()
