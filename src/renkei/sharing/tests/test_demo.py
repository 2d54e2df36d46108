"""The demo's sample reports and advisories (`renkei demo`, `renkei up`): who sees what, and that
loading again changes nothing."""

import datetime as dt
import io
import ipaddress

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone, translation
from django_tasks_db.models import DBTaskResult

from renkei.audit.models import AuditRecord
from renkei.audit.services import audit_verify
from renkei.directory.models import Organization, User
from renkei.sharing.choices import CommentKind, GrantReason, ObservableType, ReportStatus, Tlp, VersionStage
from renkei.sharing.demo import ADVISORIES, REPORTS, sample_content_load
from renkei.sharing.models import (
    Acknowledgement,
    Advisory,
    AdvisoryAudience,
    AnonymizedObservable,
    AnonymizedReport,
    CauseClassification,
    Observable,
    Report,
    ReportComment,
    ReportGrant,
    ReportVersion,
)
from renkei.sharing.selectors import (
    anonymized_reports_visible_to,
    overdue_reports_visible_to,
    reports_by_month_and_sector,
    reports_visible_to,
    unacknowledged_advisories,
)

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DOCUMENTATION_NETWORKS = [
    ipaddress.ip_network(net) for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]
TITLES = {spec.key: spec.title for spec in REPORTS}


def run_demo(*args) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with translation.override("en"):
        call_command("demo", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def counts() -> dict[str, int]:
    models = (
        Report,
        ReportVersion,
        ReportGrant,
        Observable,
        CauseClassification,
        ReportComment,
        AnonymizedReport,
        AnonymizedObservable,
        Advisory,
        AdvisoryAudience,
        Acknowledgement,
        AuditRecord,
        DBTaskResult,
        User,
        Organization,
    )
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture(scope="module")
def _loaded_once(django_db_setup, django_db_blocker):
    """`renkei demo` once for the module, rolled back at its end (tests nest as savepoints)."""
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        yield run_demo()
        transaction.set_rollback(True)


@pytest.fixture
def demo(_loaded_once, db):
    return _loaded_once


def user(username: str) -> User:
    return User.objects.get(username=username)


def report(key: str) -> Report:
    return Report.objects.get(title=TITLES[key])


def visible_titles(username: str) -> set[str]:
    return set(reports_visible_to(user(username)).values_list("title", flat=True))


def test_the_demo_loads_every_sample_report_and_advisory(demo):
    stdout, stderr = demo
    assert "Sample content added: 6 reports" in stdout
    assert stderr == ""  # nothing left out
    assert set(Report.objects.values_list("title", flat=True)) == set(TITLES.values())
    assert set(Advisory.objects.values_list("title", flat=True)) == {spec.title for spec in ADVISORIES}
    assert {r.sector.code for r in Report.objects.all()} >= {"finance", "electricity", "medical", "water"}
    assert set(Report.objects.values_list("kind", flat=True)) == {"failure", "sign"}
    assert set(Report.objects.values_list("tlp", flat=True)) == {
        Tlp.GREEN,
        Tlp.AMBER,
        Tlp.AMBER_STRICT,
        Tlp.RED,
    }
    # Detected over the last weeks, submitted now, as the services stamp them.
    now = timezone.now()
    for item in Report.objects.all():
        assert now - dt.timedelta(days=60) < item.detected_at < now - dt.timedelta(days=1)
        assert item.occurred_at is None or item.occurred_at <= item.detected_at


def test_observables_only_use_documentation_addresses_and_reserved_domains(demo):
    observables = list(Observable.objects.values_list("type", "value"))
    assert {kind for kind, _value in observables} >= {ObservableType.IPV4, ObservableType.DOMAIN}
    for kind, value in observables + list(AnonymizedObservable.objects.values_list("type", "value")):
        if kind == ObservableType.IPV4:
            network = ipaddress.ip_network(value)
            assert any(network.subnet_of(doc) for doc in DOCUMENTATION_NETWORKS), value
        elif kind in (ObservableType.DOMAIN, ObservableType.URL, ObservableType.EMAIL):
            host = value.split("//")[-1].split("/")[0].split("@")[-1]
            assert host.endswith((".example.com", ".test")), value


def test_updates_and_final_report_on_the_monitoring_outage(demo):
    outage = report("electricity-monitoring-outage")
    stages = list(outage.versions.order_by("number").values_list("stage", flat=True))
    assert stages == [VersionStage.INITIAL, VersionStage.UPDATE, VersionStage.FINAL]
    assert outage.stage == VersionStage.FINAL and outage.status == ReportStatus.RESOLVED
    # Classified "unknown" at first, the cause found in the update.
    assert list(outage.classifications.order_by("pk").values_list("cause__code", flat=True)) == [
        "unknown",
        "accidental.equipment_failure",
    ]
    assert outage.tlp == Tlp.AMBER_STRICT
    assert report("medical-ransomware").versions.filter(stage=VersionStage.UPDATE).exists()


def test_ministry_question_and_operator_answer(demo):
    intrusion = report("finance-credential-stuffing")
    question = intrusion.comments.get(kind=CommentKind.QUESTION)
    answer = intrusion.comments.get(kind=CommentKind.ANSWER)
    assert question.author.username == "fsa-coordinator"
    assert question.author_organization.name_ja == "金融庁"
    assert answer.parent == question
    assert answer.author.username == "finance-op1-reporter"


def test_who_sees_which_report(demo):
    own = TITLES["finance-credential-stuffing"]
    assert own in visible_titles("finance-op1-reporter")
    # Another bank under the same CEPTOAR does not see the first bank's AMBER report.
    assert report("finance-credential-stuffing").tlp == Tlp.AMBER
    assert own not in visible_titles("finance-op3-reporter")
    assert TITLES["finance-phishing-mail"] in visible_titles("finance-op3-reporter")
    # The finance ministry sees the finance reports and nothing else.
    assert visible_titles("fsa-coordinator") == {own, TITLES["finance-phishing-mail"]}
    # The CEPTOAR sees what was shared with it.
    assert visible_titles("ceptoar-finance-banks-officer") == {TITLES["finance-phishing-mail"]}
    # The national centre's named coordinator sees everything.
    assert visible_titles("nco-coordinator") == set(TITLES.values())


def test_the_red_report_reaches_named_people_only(demo):
    red = report("electricity-suspicious-control-traffic")
    named = set(red.grants.filter(reason=GrantReason.NAMED).values_list("user__username", flat=True))
    assert named == {"nco-coordinator", "nco-analyst", "meti-coordinator"}
    for username in (*named, "electricity-op2-reporter", "electricity-op2-officer"):
        assert red.title in visible_titles(username), username
    for username in ("meti-analyst", "nco-officer", "electricity-op1-reporter", "electricity-op2-analyst"):
        assert red.title not in visible_titles(username), username


def test_ceptoar_share_and_anonymized_copy_for_everyone(demo):
    phishing = report("finance-phishing-mail")
    assert phishing.share_with_ceptoar and phishing.anonymized_copy_consent
    assert phishing.grants.filter(reason=GrantReason.CEPTOAR, organization__name_ja="銀行等セプター").exists()
    copy = AnonymizedReport.objects.get()
    assert copy.source == phishing and copy.tlp == Tlp.GREEN
    assert copy.sector.code == "finance"
    assert "ひまわり" not in copy.title + copy.narrative
    assert copy.observables.count() == 3
    # Beyond finance: a hospital's reporter sees the copy, not the original.
    assert copy in anonymized_reports_visible_to(user("medical-op2-reporter"))
    assert copy in anonymized_reports_visible_to(user("finance-op1-reporter"))
    assert phishing.title not in visible_titles("medical-op2-reporter")


def test_advisories_from_the_centre_a_ministry_and_a_ceptoar(demo):
    by_issuer = {a.issuer.name_ja: a for a in Advisory.objects.select_related("issuer")}
    centre = by_issuer["国家サイバー統括室"]
    assert centre.audience.filter(all_ci=True).exists() and centre.ack_required
    assert centre.ack_due > timezone.now()
    assert list(centre.source_reports.all()) == [report("medical-ransomware")]
    ministry = by_issuer["金融庁"]
    assert list(ministry.audience.values_list("sector__code", flat=True)) == ["finance"]
    assert list(ministry.source_reports.all()) == [report("finance-credential-stuffing")]
    ceptoar = by_issuer["銀行等セプター"]
    assert set(ceptoar.audience.values_list("organization__name_ja", flat=True)) == {
        "株式会社さきがけ銀行",
        "ひまわり信用金庫",
    }
    inbox = Advisory.objects.restrict(user("finance-op1-reporter"))
    assert set(inbox) == {centre, ministry, ceptoar}
    assert set(Advisory.objects.restrict(user("medical-op1-reporter"))) == {centre}


def test_some_organizations_acknowledged_the_centres_advisory_and_some_did_not(demo):
    pending = unacknowledged_advisories(user("nco-coordinator")).get()
    assert pending.acknowledgements.count() == 6
    assert 0 < pending.pending_count < pending.recipient_count
    acknowledged = set(pending.acknowledgements.values_list("organization__name_ja", flat=True))
    assert "株式会社さきがけ銀行" in acknowledged and "ひまわり信用金庫" not in acknowledged


def test_the_dashboard_has_months_and_overdue_reports(demo):
    coordinator = user("nco-coordinator")
    trend = reports_by_month_and_sector(reports_visible_to(coordinator))
    assert trend.total == len(REPORTS)
    assert sum(1 for total in trend.month_totals if total) >= 2
    overdue = set(overdue_reports_visible_to(coordinator).values_list("title", flat=True))
    # Detected more than 30 days ago with no final report: the final report is overdue.
    assert overdue == {TITLES["water-exposed-remote-monitoring"], TITLES["medical-ransomware"]}
    assert set(overdue_reports_visible_to(user("mhlw-coordinator")).values_list("title", flat=True)) == {
        TITLES["medical-ransomware"]
    }


def test_loading_again_creates_nothing_and_the_audit_chain_verifies(demo):
    assert audit_verify().ok
    before = counts()
    stdout, stderr = run_demo()
    assert "The sample reports and advisories are already in place; nothing changed." in stdout
    assert stderr == ""
    assert counts() == before
    check = audit_verify()
    assert check.ok and check.checked == before["AuditRecord"]


def test_a_deactivated_author_leaves_out_what_is_still_missing(demo):
    Report.objects.filter(title=TITLES["water-exposed-remote-monitoring"]).delete()
    User.objects.filter(username="water-op2-reporter").update(is_active=False)
    before = counts()

    with translation.override("en"):
        result = sample_content_load()

    assert not result.changed
    assert result.skipped == [
        f"{TITLES['water-exposed-remote-monitoring']}: water-op2-reporter is missing or deactivated"
    ]
    assert counts() == before


def test_reset_gives_the_new_accounts_a_fresh_set(demo):
    run_demo("--reset")
    # The new bank reports again; the earlier report stays with the retired organization.
    reporter = user("finance-op1-reporter")
    own = reports_visible_to(reporter).filter(title=TITLES["finance-credential-stuffing"]).get()
    assert own.organization.active and own.reporter == reporter
    assert Report.objects.filter(title=own.title).count() == 2
    assert (
        Advisory.objects.restrict(reporter).filter(acknowledgements__organization=own.organization).exists()
    )
    assert audit_verify().ok


def test_refuses_a_production_installation(demo, settings):
    Report.objects.filter(title=TITLES["medical-ransomware"]).delete()
    before = counts()
    settings.PRODUCTION = True
    with pytest.raises(ValidationError, match="production"):
        sample_content_load()
    with pytest.raises(CommandError, match="production"):
        run_demo()
    assert counts() == before
