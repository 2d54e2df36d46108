"""Advisory fan-out to 10,000 organizations and 30,000 people on PostgreSQL: the time from issuing an
advisory to every inbox row existing and every e-mail batch and webhook delivery being queued, as a
ratio to a bare bulk insert of the same rows measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/renkei_bench_fanout \\
        .venv/bin/python bench/advisory_fan_out.py

Goal (issue 3): ratio <= 3. The community is generated inside PostgreSQL on the first run and reused.
"""

import os
import statistics
import time
import uuid

from benchdb import setup_django

ORGANIZATIONS = int(os.environ.get("BENCH_ORGANIZATIONS", "10000"))
PEOPLE_PER_ORGANIZATION = int(os.environ.get("BENCH_PEOPLE_PER_ORGANIZATION", "3"))
WEBHOOK_EVERY = int(os.environ.get("BENCH_WEBHOOK_EVERY", "10"))  # one organization in ten has one
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def fill() -> None:
    from django.db import connection

    from renkei.core.referencedata import all_reference_data_load
    from renkei.directory.models import Organization

    if Organization.objects.filter(name_ja__startswith="bench-op-").count() >= ORGANIZATIONS:
        return
    started = time.perf_counter()
    all_reference_data_load()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO directory_organization (type, name_ja, name_en, size, active, created_at)
            SELECT 'operator', 'bench-op-' || g, '', 'sme', true, now() FROM generate_series(1, %s) g
            """,
            [ORGANIZATIONS],
        )
        cursor.execute(
            """
            INSERT INTO directory_organization_sectors (organization_id, sector_id)
            SELECT o.id, s.id FROM directory_organization o
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM directory_sector) s
              ON s.n = o.id % (SELECT count(*) FROM directory_sector)
            WHERE o.name_ja LIKE 'bench-op-%'
            """
        )
        cursor.execute(
            """
            INSERT INTO directory_user (password, is_superuser, username, first_name, last_name, email,
                                        is_staff, is_active, date_joined, display_name, language)
            SELECT '!', false, 'bench-' || o.id || '-' || p, '', '',
                   'bench-' || o.id || '-' || p || '@example.jp', false, true, now(), '', ''
            FROM directory_organization o CROSS JOIN generate_series(1, %s) p
            WHERE o.name_ja LIKE 'bench-op-%%'
            """,
            [PEOPLE_PER_ORGANIZATION],
        )
        cursor.execute(
            """
            INSERT INTO directory_membership (user_id, organization_id, role, created_at)
            SELECT u.id, o.id, 'officer', now()
            FROM directory_organization o
            JOIN directory_user u ON u.username LIKE 'bench-' || o.id || '-%'
            WHERE o.name_ja LIKE 'bench-op-%'
            """
        )
        cursor.execute(
            """
            INSERT INTO sharing_webhookendpoint (organization_id, url, secret, active, created_at)
            SELECT o.id, 'https://hooks.example.jp/' || o.id, md5(o.id::text), true, now()
            FROM directory_organization o
            WHERE o.name_ja LIKE 'bench-op-%%' AND o.id %% %s = 0
            """,
            [WEBHOOK_EVERY],
        )
        cursor.execute("ANALYZE")
    print(f"generated {ORGANIZATIONS:,} organizations in {time.perf_counter() - started:.0f} s", flush=True)


def issuer():
    from renkei.directory.models import Organization, User
    from renkei.directory.services import user_create

    centre = Organization.objects.get(type="national_center")
    user = User.objects.filter(username="bench-issuer").first()
    return user or user_create(
        actor=None, username="bench-issuer", organization=centre, role="coordinator"
    ), centre


def main() -> None:
    setup_django("postgres://postgres@127.0.0.1:5432/renkei_bench_fanout")
    fill()
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from renkei.sharing.delivery import fan_out_advisory
    from renkei.sharing.models import Advisory, InboxItem
    from renkei.sharing.services import AdvisoryInput, advisory_issue

    user, centre = issuer()
    fan_out_times, baseline_times = [], []
    for round_number in range(ROUNDS):
        tasks_before = DBTaskResult.objects.count()
        started = time.perf_counter()
        with transaction.atomic():
            advisory = advisory_issue(
                issuer=user,
                organization=centre,
                data=AdvisoryInput(title=f"ベンチマーク注意喚起 {round_number}", body="本文", all_ci=True),
            )
        # The on-commit hook queued the fan-out task; run it here, as the worker would.
        fan_out_advisory(advisory_id=str(advisory.pk))
        fan_out_times.append(time.perf_counter() - started)
        inbox = list(InboxItem.objects.filter(advisory=advisory).values_list("user_id", "organization_id"))
        queued = list(
            DBTaskResult.objects.order_by("-enqueued_at")[: DBTaskResult.objects.count() - tasks_before]
        )

        # Baseline: the same rows for a second advisory, written as plainly as the database allows.
        twin = Advisory.objects.create(
            issuer=centre, issued_by=user, title=advisory.title, body=advisory.body
        )
        for task in queued:
            task.id = uuid.uuid4()
        started = time.perf_counter()
        with transaction.atomic():
            InboxItem.objects.bulk_create(
                [InboxItem(advisory=twin, user_id=u, organization_id=o) for u, o in inbox], batch_size=2000
            )
            DBTaskResult.objects.bulk_create(queued, batch_size=2000)
        baseline_times.append(time.perf_counter() - started)
        print(
            f"round {round_number + 1}: {len(inbox):,} inbox rows, {len(queued):,} tasks queued; "
            f"fan-out {fan_out_times[-1]:.2f} s, bare insert {baseline_times[-1]:.2f} s",
            flush=True,
        )
    fan_out, baseline = statistics.median(fan_out_times), statistics.median(baseline_times)
    print(f"median fan-out / bare insert: {fan_out / baseline:.2f} (goal <= 3)")


if __name__ == "__main__":
    main()
