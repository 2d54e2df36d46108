"""The sharing app's data migrations, run on rows built with the historical models."""

import datetime as dt

import pytest
from django.utils import timezone

from renkei.audit.tests.migration_support import back_to_the_latest_migrations_afterwards, migrate_to
from renkei.directory.tests.factories import OrganizationFactory, SectorFactory, member
from renkei.sharing.models import CauseCategory, NotificationLog

BEFORE_NOTIFICATION_LOG = [
    ("sharing", "0004_idempotency_keys_moved_to_core"),
    ("audit", "0003_records_sealed_after_commit"),
]
NOTIFICATION_LOG = ("sharing", "0005_notification_log")


@pytest.mark.django_db(transaction=True)
def test_notifications_noted_in_the_audit_trail_move_to_the_notification_log():
    # People, organizations and the taxonomy are not touched by the migrations rewound below.
    sector = SectorFactory()
    organization = OrganizationFactory(sectors=[sector])
    reporter = member(organization)
    cause = CauseCategory.objects.create(code="intentional.intrusion", name_ja="不正侵入")
    start = timezone.now() - dt.timedelta(days=1)

    with back_to_the_latest_migrations_afterwards():
        old = migrate_to(*BEFORE_NOTIFICATION_LOG)
        report = old.get_model("sharing", "Report").objects.create(
            kind="failure",
            title="不正アクセスの疑い",
            detected_at=start,
            cause_id=cause.pk,
            organization_id=organization.pk,
            reporter_id=reporter.pk,
            sector_id=sector.pk,
        )
        advisory = old.get_model("sharing", "Advisory").objects.create(
            title="注意喚起", body="本文", issuer_id=organization.pk, issued_by_id=reporter.pk
        )
        OldRecord = old.get_model("audit", "AuditRecord")

        def noted(minutes: int, after, *, obj=report, action="update", object_id=None) -> None:
            OldRecord.objects.create(
                at=start + dt.timedelta(minutes=minutes),
                action=action,
                object_type=f"sharing.{obj._meta.model_name}",
                object_id=object_id or str(obj.pk),
                after=after,
            )

        noted(1, {"notification": "submitted", "through_grant": 7})
        noted(2, {"reminder": "deadline", "stage": "initial", "state": "due_soon"})
        # Two runs at once could note one reminder twice; the log keeps the first.
        noted(3, {"reminder": "deadline", "stage": "initial", "state": "due_soon"})
        noted(4, {"reminder": "acknowledgement", "organizations": [3, 5], "recipients": 4}, obj=advisory)
        # Not notifications: an ordinary change, a created report, a report since removed, no `after`.
        noted(5, {"title": "更新"})
        noted(6, {"notification": "submitted", "through_grant": 1}, action="create")
        noted(7, {"notification": "forwarded", "through_grant": 9}, object_id="gone")
        noted(8, None)
        audit_records = OldRecord.objects.count()

        new = migrate_to(NOTIFICATION_LOG)
        assert new.get_model("audit", "AuditRecord").objects.count() == audit_records

    fields = ("kind", "report_id", "advisory_id", "event", "through_grant", "stage", "state")
    fields += ("organizations", "recipients", "sent_at")
    assert list(NotificationLog.objects.order_by("sent_at").values_list(*fields)) == [
        ("audience_told", report.pk, None, "submitted", 7, "", "", [], 0, start + dt.timedelta(minutes=1)),
        (
            "deadline_reminder",
            report.pk,
            None,
            "",
            None,
            "initial",
            "due_soon",
            [],
            1,
            start + dt.timedelta(minutes=2),
        ),
        (
            "acknowledgement_reminder",
            None,
            advisory.pk,
            "",
            None,
            "",
            "",
            [3, 5],
            4,
            start + dt.timedelta(minutes=4),
        ),
    ]
