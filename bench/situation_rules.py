"""Recognition rules at scale: what evaluating 20 active rules costs per incoming report, with
1,000,000 past reports on PostgreSQL, as a ratio to submitting that report (report_submit: the
report, its version, observables, audience, audit record and queued notification) in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/renkei_bench_rules \\
        .venv/bin/python bench/situation_rules.py

The database is created and filled on the first run (a few minutes; PostgreSQL generates the rows:
reports over the past year from 5,000 operators in every sector, with mixed causes, one version and
one observable each) and reused afterwards. The incoming reports are the worst case for the rules: an
intentional cause, degraded service with users affected and observables, in the sector most depended
on, so every one of the 20 rules has to look. The thresholds are set so that nothing fires: a firing
adds one proposal write, which is rare, and would change the next measurement. (An outage would also
write a spill-over proposal, a separate feature with its own write, so the reports are degraded;
BENCH_OUTAGE=1 sends outages instead, to see that write's cost too.)

Goal (issue 5): evaluation <= 1.5 x the submission.
"""

import os
import statistics
import time

from benchdb import setup_django

REPORTS = int(os.environ.get("BENCH_REPORTS", "1000000"))
ORGANIZATIONS = int(os.environ.get("BENCH_ORGANIZATIONS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "200"))
OUTAGE = os.environ.get("BENCH_OUTAGE", "0") == "1"
CAUSES = [
    "intentional.malware",
    "intentional.dos",
    "intentional.intrusion",
    "accidental.operation_error",
    "accidental.program_defect",
    "accidental.equipment_failure",
    "environmental.disaster",
    "unknown",
]


def fill() -> None:
    """The community and a year of reports, generated inside PostgreSQL (no Python loop over rows)."""
    from django.db import connection

    from renkei.core.referencedata import all_reference_data_load
    from renkei.sharing.models import Report

    all_reference_data_load()
    if Report.objects.count() >= REPORTS:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO directory_organization (type, name_ja, name_en, size, active, created_at)
            SELECT 'operator', 'bench-op-' || g, '', 'large', true, now() FROM generate_series(1, %s) g
            """,
            [ORGANIZATIONS],
        )
        cursor.execute(
            """
            INSERT INTO directory_organization_sectors (organization_id, sector_id)
            SELECT o.id, s.id FROM directory_organization o
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM directory_sector) s
              ON s.n = o.id % (SELECT count(*) FROM directory_sector)
            WHERE o.name_ja LIKE 'bench-op-%%'
            """
        )
        cursor.execute(
            """
            INSERT INTO directory_user (password, is_superuser, username, first_name, last_name, email,
                                        is_staff, is_active, date_joined, display_name, language)
            SELECT '!', false, 'bench-' || o.id, '', '', '', false, true, now(), '', ''
            FROM directory_organization o WHERE o.name_ja LIKE 'bench-op-%%'
            """
        )
        cursor.execute(
            """
            INSERT INTO directory_membership (user_id, organization_id, role, created_at)
            SELECT u.id, o.id, 'reporter', now()
            FROM directory_organization o JOIN directory_user u ON u.username = 'bench-' || o.id
            """
        )
        cursor.execute(
            """
            INSERT INTO sharing_report (id, organization_id, reporter_id, sector_id, kind, status, tlp,
                share_with_ceptoar, anonymized_copy_consent, ransom_paid, title, cause_id, narrative,
                detected_at, stage, version_count, created_at, updated_at)
            SELECT gen_random_uuid(), op.org_id, op.user_id, op.sector_id, 'failure', 'open', 'AMBER',
                   false, false, false, 'bench report ' || g,
                   causes.ids[1 + g %% array_length(causes.ids, 1)],
                   '', now() - g * interval '31 seconds', 'initial', 1,
                   now() - g * interval '31 seconds', now()
            FROM generate_series(1, %s) g
            CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM sharing_causecategory
                        WHERE code = ANY(%s)) causes
            JOIN (
                SELECT o.id AS org_id, u.id AS user_id, os.sector_id,
                       row_number() OVER (ORDER BY o.id) - 1 AS n
                FROM directory_organization o
                JOIN directory_organization_sectors os ON os.organization_id = o.id
                JOIN directory_user u ON u.username = 'bench-' || o.id
                WHERE o.name_ja LIKE 'bench-op-%%'
            ) op ON op.n = g %% %s
            """,
            [REPORTS, CAUSES, ORGANIZATIONS],
        )
        cursor.execute(
            """
            INSERT INTO sharing_reportversion (report_id, number, stage, author_id, created_at, title, status,
                cause_id, detected_at, impact_confidentiality, impact_integrity, impact_availability,
                service_state, users_affected, area, affected_services, narrative)
            SELECT r.id, 1, 'initial', r.reporter_id, r.created_at, r.title, r.status, r.cause_id,
                   r.detected_at, false, false, (hashtext(r.id::text) % 4 = 0),
                   CASE WHEN hashtext(r.id::text) % 4 = 0 THEN 'outage' ELSE 'none' END,
                   abs(hashtext(r.id::text)) % 5000, '', '', ''
            FROM sharing_report r
            """
        )
        # Observables drawn from a pool of 100,000 addresses, so values recur across reports.
        cursor.execute(
            """
            INSERT INTO sharing_observable (version_id, type, value)
            SELECT v.id, 'ipv4-addr', '10.' || (n / 65536) || '.' || (n / 256 % 256) || '.' || (n % 256)
            FROM (SELECT id, abs(hashtext(report_id::text)) % 100000 AS n FROM sharing_reportversion) v
            """
        )
    _vacuum()
    print(f"generated {REPORTS:,} reports in {time.perf_counter() - started:.0f} s", flush=True)


def _vacuum() -> None:
    """Refresh statistics and the visibility map, as autovacuum would (it is off on this machine)."""
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        dbname=database["NAME"],
        autocommit=True,
    ) as connection:
        for table in ("sharing_report", "sharing_reportversion", "sharing_observable"):
            connection.execute(f"VACUUM ANALYZE {table}")


def twenty_rules() -> None:
    """20 active rules of every kind, with thresholds this data never reaches."""
    from renkei.situations.choices import RuleKind
    from renkei.situations.models import AlertLevel, RecognitionRule

    RecognitionRule.objects.all().delete()
    level = AlertLevel.objects.get(code="heightened")
    rules = []
    for number, (cause, hours) in enumerate(
        [
            ("intentional", 6),
            ("intentional", 24),
            ("intentional.malware", 6),
            ("intentional.malware", 72),
            ("intentional.dos", 1),
            ("intentional", 168),
            ("intentional.intrusion", 12),
            ("intentional", 3),
        ]
    ):
        rules.append(
            RecognitionRule(
                code=f"bench-cause-{number}",
                name_ja="bench",
                kind=RuleKind.CAUSE_ACROSS_SECTORS,
                level=level,
                active=True,
                cause_code=cause,
                min_reports=100_000,
                min_sectors=20,
                window_hours=hours,
            )
        )
    for number, hours in enumerate([6, 24, 72, 168]):
        rules.append(
            RecognitionRule(
                code=f"bench-observable-{number}",
                name_ja="bench",
                kind=RuleKind.SHARED_OBSERVABLE,
                level=level,
                active=True,
                min_organizations=10_000,
                window_hours=hours,
            )
        )
    for number, users in enumerate([10_000_000, 20_000_000, 50_000_000, 100_000_000]):
        rules.append(
            RecognitionRule(
                code=f"bench-outage-{number}",
                name_ja="bench",
                kind=RuleKind.OUTAGE_USERS,
                level=level,
                active=True,
                min_users=users,
            )
        )
    for number, dependents in enumerate([20, 30, 40, 50]):
        rules.append(
            RecognitionRule(
                code=f"bench-depended-{number}",
                name_ja="bench",
                kind=RuleKind.DEPENDED_ON_SECTOR,
                level=level,
                active=True,
                min_dependents=dependents,
            )
        )
    RecognitionRule.objects.bulk_create(rules)


def main() -> None:
    setup_django("postgres://postgres@127.0.0.1:5432/renkei_bench_rules")
    fill()
    twenty_rules()
    from django.db import transaction
    from django.utils import timezone

    from renkei.directory.models import Organization
    from renkei.sharing.choices import ServiceState
    from renkei.sharing.models import CauseCategory
    from renkei.sharing.services import ObservableInput, ReportInput, report_submit
    from renkei.situations.models import Proposal, SpilloverProposal
    from renkei.situations.services import evaluate_report

    power = Organization.objects.filter(name_ja__startswith="bench-op-", sectors__code="electricity").first()
    reporter = power.memberships.get().user
    sector = power.sectors.get()
    malware = CauseCategory.objects.get(code="intentional.malware")

    def incoming(number: int) -> ReportInput:
        return ReportInput(
            title=f"incoming {number}",
            sector=sector,
            kind="failure",
            detected_at=timezone.now(),
            cause=malware,
            service_state=ServiceState.OUTAGE if OUTAGE else ServiceState.DEGRADED,
            impact_availability=True,
            users_affected=1_000,
            observables=[
                ObservableInput("ipv4-addr", f"10.0.{number % 256}.1"),
                ObservableInput("domain-name", f"c2-{number}.example.net"),
            ],
        )

    submit_times, evaluate_times = [], []
    for number in range(ROUNDS + 10):
        started = time.perf_counter()
        with transaction.atomic():
            report = report_submit(reporter=reporter, organization=power, data=incoming(number))
        submitted = time.perf_counter()
        evaluate_report(str(report.pk))
        evaluated = time.perf_counter()
        if number >= 10:  # warm-up
            submit_times.append(submitted - started)
            evaluate_times.append(evaluated - submitted)
    assert not Proposal.objects.exists(), "a rule fired; raise its threshold"
    assert OUTAGE or not SpilloverProposal.objects.exists()
    SpilloverProposal.objects.all().delete()
    submit_median, evaluate_median = statistics.median(submit_times), statistics.median(evaluate_times)
    print(f"past reports: {REPORTS:,}; active rules: 20; rounds: {ROUNDS}")
    print(f"submit median {submit_median * 1000:.2f} ms; evaluate median {evaluate_median * 1000:.2f} ms")
    print(f"evaluation / submission: {evaluate_median / submit_median:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
