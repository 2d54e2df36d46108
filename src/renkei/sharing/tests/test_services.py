"""Sharing services: the TLP 2.0 audience contract, and each service's permissions, validation,
atomicity, auditing and queued notifications."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.utils import timezone, translation

from renkei.audit.models import AuditRecord
from renkei.core.choices import Action
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization, Sector, User
from renkei.directory.tests.factories import member
from renkei.sharing.choices import CommentKind, GrantReason, Tlp
from renkei.sharing.models import (
    Acknowledgement,
    Advisory,
    AdvisoryAudience,
    AnonymizedReport,
    CauseClassification,
    Report,
    ReportComment,
    ReportGrant,
)
from renkei.sharing.services import (
    AttachmentInput,
    ObservableInput,
    advisory_acknowledge,
    advisory_issue,
    report_comment,
    report_forward,
    report_link,
    report_reclassify,
    report_relabel,
    report_unlink,
)
from renkei.sharing.tests.factories import (
    advisory_for,
    advisory_input,
    anonymized_copy_for,
    cause,
    report_for,
)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def everyone() -> list[User]:
    # Fresh objects: the access layer caches each user's memberships on the instance.
    return list(User.objects.all())


def who_sees(obj, action: str = Action.VIEW) -> set[str]:
    model = type(obj)
    return {u.username for u in everyone() if model.objects.restrict(u, action).filter(pk=obj.pk).exists()}


def audit_count(model) -> int:
    return AuditRecord.objects.filter(object_type=model._meta.label_lower).count()


def members_of(*organizations: Organization) -> set[str]:
    return set(
        User.objects.filter(memberships__organization__in=organizations).values_list("username", flat=True)
    )


# --- The TLP 2.0 contract --------------------------------------------------------------------------


def test_amber_strict_report_reaches_the_source_its_ministry_and_the_centre_only(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.AMBER_STRICT)
    assert who_sees(report) == members_of(c.bank_a, c.fsa, c.nisc)
    for outsider in ("bank_b_reporter", "mhlw_coord", "bank_ceptoar_officer", "securities_ceptoar_officer"):
        assert outsider not in who_sees(report)


def test_amber_strict_report_shared_with_the_ceptoar_reaches_that_ceptoar_only(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.AMBER_STRICT, share_with_ceptoar=True)
    assert who_sees(report) == members_of(c.bank_a, c.fsa, c.nisc, c.bank_ceptoar)
    assert "securities_ceptoar_officer" not in who_sees(report)


def test_red_report_defaults_to_the_chains_duty_coordinators_and_the_source_officers(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.RED)
    assert who_sees(report) == {"bank_a_reporter", "bank_a_officer", "fsa_coord", "nisc_coord"}
    # The organizations are recorded as routing, but grant nothing under RED.
    assert report.grants.filter(organization=c.fsa, reason=GrantReason.MANDATED).exists()


def test_red_report_reaches_exactly_the_named_people(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.RED, recipients=[c.nisc_analyst])
    assert who_sees(report) == {"bank_a_reporter", "bank_a_officer", "nisc_analyst"}


@pytest.mark.parametrize(
    ("reporter", "sector", "deactivate", "message"),
    [
        ("bank_b_reporter", "finance", False, "cannot report on behalf"),
        ("bank_a_reporter", "water", False, "is not in the sector"),
        ("bank_a_reporter", "finance", True, "cannot report on behalf"),
        ("bank_a_executive", "finance", False, "cannot report on behalf"),
    ],
)
def test_only_a_reporting_member_of_an_active_organization_of_the_sector_reports(
    sharing_community, reporter, sector, deactivate, message
):
    c = sharing_community
    c.bank_a_executive = member(c.bank_a, Role.EXECUTIVE, "bank_a_executive")  # reads, does not report
    if deactivate:
        Organization.objects.filter(pk=c.bank_a.pk).update(active=False)
        c.bank_a.refresh_from_db()
    with pytest.raises(ValidationError, match=message):
        report_for(getattr(c, reporter), c.bank_a, sector=Sector.objects.get(code=sector))
    assert not Report.objects.exists()


def test_a_sector_without_a_ministry_or_an_active_centre_still_takes_reports(sharing_community):
    c = sharing_community
    Sector.objects.get(code="finance").ministries.clear()
    Organization.objects.filter(pk=c.nisc.pk).update(active=False)
    report = report_for(c.bank_a_reporter, c.bank_a)
    assert set(report.grants.values_list("reason", flat=True)) == {GrantReason.SOURCE}


def test_named_recipients_are_only_for_red(sharing_community):
    c = sharing_community
    with pytest.raises(ValidationError, match="only for TLP:RED"):
        report_for(c.bank_a_reporter, c.bank_a, recipients=[c.nisc_analyst])


def test_advisory_to_a_sector_reaches_every_organization_in_it_and_the_issuer_only(sharing_community):
    c = sharing_community
    advisory = advisory_for(c.nisc_coordinator, c.nisc, sectors=[c.finance])
    finance_orgs = Organization.objects.filter(sectors=c.finance)
    assert who_sees(advisory) == members_of(*finance_orgs, c.nisc)
    assert {"bank_a_reporter", "bank_b_reporter", "bank_ceptoar_officer", "securities_ceptoar_officer"} <= (
        who_sees(advisory)
    )
    assert not {"fsa_coord", "mhlw_coord", "hospital_reporter", "citizen"} & who_sees(advisory)


# --- Comments, questions, answers ------------------------------------------------------------------


def test_question_and_answer_thread(
    sharing_community, submitted_report, queued, django_capture_on_commit_callbacks
):
    c = sharing_community
    with django_capture_on_commit_callbacks(execute=True):
        question = report_comment(
            author=c.fsa_coordinator, report=submitted_report, body="影響範囲は？", kind=CommentKind.QUESTION
        )
        answer = report_comment(
            author=c.bank_a_reporter,
            report=submitted_report,
            body="約1万人です。",
            kind=CommentKind.ANSWER,
            parent=question,
        )
    assert question.author_organization == c.fsa
    assert (answer.parent, answer.author_organization) == (question, c.bank_a)
    report_id = str(submitted_report.pk)
    assert queued["report_follow_up"].calls == [
        {"report_id": report_id, "event": "question"},
        {"report_id": report_id, "event": "answer"},
    ]
    assert audit_count(ReportComment) == 2


def test_plain_comments_by_anyone_who_sees_the_report(
    sharing_community, queued, django_capture_on_commit_callbacks
):
    c = sharing_community
    with django_capture_on_commit_callbacks(execute=True):
        report = report_for(c.bank_a_reporter, c.bank_a, share_with_ceptoar=True)
        comment = report_comment(author=c.ceptoar_officer, report=report, body="会員に注意喚起します。")
    assert comment.author_organization == c.bank_ceptoar
    assert comment.kind == CommentKind.COMMENT
    assert queued["report_follow_up"].calls == [{"report_id": str(report.pk), "event": "submitted"}]


@pytest.mark.parametrize(
    ("author", "kind", "message"),
    [
        ("bank_b_reporter", CommentKind.COMMENT, "cannot comment"),
        ("hospital_reporter", CommentKind.COMMENT, "cannot comment"),
        ("bank_a_reporter", CommentKind.QUESTION, "can ask questions"),
        ("bank_ceptoar_officer", CommentKind.QUESTION, "cannot comment"),
        ("mhlw_coord", CommentKind.QUESTION, "cannot comment"),
        ("fsa_coord", CommentKind.ANSWER, "Only the reporting organization"),
        ("bank_a_reporter", CommentKind.ANSWER, "must reply to a question"),
    ],
)
def test_comment_permissions(sharing_community, submitted_report, author, kind, message):
    with pytest.raises(ValidationError, match=message):
        report_comment(
            author=User.objects.get(username=author), report=submitted_report, body="本文", kind=kind
        )
    assert not ReportComment.objects.exists()
    assert audit_count(ReportComment) == 0


def test_ceptoar_sees_but_cannot_question(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, share_with_ceptoar=True)
    with pytest.raises(ValidationError, match="can ask questions"):
        report_comment(author=c.ceptoar_officer, report=report, body="?", kind=CommentKind.QUESTION)


def test_comment_validation(sharing_community, submitted_report):
    c = sharing_community
    other = report_for(c.bank_a_reporter, c.bank_a)
    foreign = report_comment(author=c.fsa_coordinator, report=other, body="?", kind=CommentKind.QUESTION)
    with pytest.raises(ValidationError, match="Write something"):
        report_comment(author=c.fsa_coordinator, report=submitted_report, body="   ")
    with pytest.raises(ValidationError, match="at most"):
        report_comment(author=c.fsa_coordinator, report=submitted_report, body="あ" * 20_001)
    with pytest.raises(ValidationError, match="another report"):
        report_comment(
            author=c.bank_a_reporter,
            report=submitted_report,
            body="回答",
            kind=CommentKind.ANSWER,
            parent=foreign,
        )
    with pytest.raises(ValidationError, match="Unknown kind"):
        report_comment(author=c.fsa_coordinator, report=submitted_report, body="x", kind="rumour")
    assert ReportComment.objects.count() == 1


# --- Forwarding within the TLP ceiling -------------------------------------------------------------


def test_forward_amber_from_a_ministry_to_an_operator_it_oversees(
    sharing_community, submitted_report, queued, django_capture_on_commit_callbacks
):
    c = sharing_community
    assert "bank_b_reporter" not in who_sees(submitted_report)
    with django_capture_on_commit_callbacks(execute=True):
        grants = report_forward(actor=c.fsa_coordinator, report=submitted_report, organizations=[c.bank_b])
    assert [(g.organization, g.reason, g.granted_by) for g in grants] == [
        (c.bank_b, GrantReason.FORWARDED, c.fsa_coordinator)
    ]
    assert "bank_b_reporter" in who_sees(submitted_report)
    assert {"report_id": str(submitted_report.pk), "event": "forwarded"} in queued["report_follow_up"].calls
    assert audit_count(ReportGrant) == 1


def test_forward_amber_stays_within_the_forwarders_clients(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, share_with_ceptoar=True)
    with pytest.raises(ValidationError, match="does not allow forwarding to Midori Hospital"):
        report_forward(actor=c.fsa_coordinator, report=report, organizations=[c.hospital])
    # A CEPTOAR passes AMBER to its member operators, not to other sectors.
    assert report_forward(actor=c.ceptoar_officer, report=report, organizations=[c.bank_b])
    with pytest.raises(ValidationError, match="Midori Hospital"):
        report_forward(actor=c.ceptoar_officer, report=report, organizations=[c.hospital])
    # The national centre's clients are the whole community, never outside it.
    assert report_forward(actor=c.nisc_coordinator, report=report, organizations=[c.hospital])
    with pytest.raises(ValidationError, match="Partner CERT"):
        report_forward(actor=c.nisc_coordinator, report=report, organizations=[c.partner])
    # An operator has no clients.
    with pytest.raises(ValidationError, match="does not allow"):
        report_forward(actor=c.bank_a_officer, report=report, organizations=[c.securities_ceptoar])


def test_forward_is_all_or_nothing(sharing_community, submitted_report):
    c = sharing_community
    grants, audits = ReportGrant.objects.count(), AuditRecord.objects.count()
    with pytest.raises(ValidationError):
        report_forward(actor=c.fsa_coordinator, report=submitted_report, organizations=[c.bank_b, c.hospital])
    assert (ReportGrant.objects.count(), AuditRecord.objects.count()) == (grants, audits)


def test_forward_amber_strict_adds_no_organizations_only_their_people(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.AMBER_STRICT)
    with pytest.raises(ValidationError, match="Momiji Bank"):
        report_forward(actor=c.fsa_coordinator, report=report, organizations=[c.bank_b])
    with pytest.raises(ValidationError, match="bank_b_officer"):
        report_forward(actor=c.fsa_coordinator, report=report, users=[c.bank_b_officer])
    grants = report_forward(actor=c.fsa_coordinator, report=report, users=[c.fsa_analyst])
    assert [g.user for g in grants] == [c.fsa_analyst]
    assert who_sees(report) == members_of(c.bank_a, c.fsa, c.nisc)


def test_forward_green_reaches_the_community_not_outside(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.GREEN)
    assert report_forward(actor=c.fsa_coordinator, report=report, organizations=[c.hospital])
    assert "hospital_reporter" in who_sees(report)
    with pytest.raises(ValidationError, match="Partner CERT"):
        report_forward(actor=c.fsa_coordinator, report=report, organizations=[c.partner])
    with pytest.raises(ValidationError, match="citizen"):
        report_forward(actor=c.fsa_coordinator, report=report, users=[c.citizen])


def test_forward_clear_reaches_anyone(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.CLEAR)
    report_forward(actor=c.fsa_coordinator, report=report, organizations=[c.partner], users=[c.citizen])
    assert {"partner_analyst", "citizen"} <= who_sees(report)


def test_forward_red_only_the_source_names_more_people(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.RED)
    with pytest.raises(ValidationError, match="not forwarded"):
        report_forward(actor=c.fsa_coordinator, report=report, users=[c.fsa_analyst])
    with pytest.raises(ValidationError, match="named people only"):
        report_forward(actor=c.bank_a_officer, report=report, organizations=[c.fsa])
    grants = report_forward(actor=c.bank_a_officer, report=report, users=[c.fsa_analyst])
    assert [(g.user, g.reason) for g in grants] == [(c.fsa_analyst, GrantReason.NAMED)]
    assert "fsa_analyst" in who_sees(report)
    assert "fsa_coord" in who_sees(report)
    assert "bank_a_admin" not in who_sees(report)


@pytest.mark.parametrize(
    "forwarder", ["bank_a_reporter", "bank_b_officer", "hospital_reporter", "fsa_analyst"]
)
def test_forward_needs_the_forward_permission(sharing_community, submitted_report, forwarder):
    c = sharing_community
    with pytest.raises(ValidationError, match="cannot forward"):
        report_forward(
            actor=User.objects.get(username=forwarder), report=submitted_report, users=[c.fsa_analyst]
        )
    assert not ReportGrant.objects.filter(reason=GrantReason.FORWARDED).exists()


def test_forward_needs_recipients_and_skips_existing_ones(sharing_community, submitted_report):
    c = sharing_community
    with pytest.raises(ValidationError, match="Choose whom"):
        report_forward(actor=c.fsa_coordinator, report=submitted_report)
    assert report_forward(actor=c.fsa_coordinator, report=submitted_report, organizations=[c.fsa]) == []
    c.bank_b.active = False
    c.bank_b.save()
    with pytest.raises(ValidationError, match="Inactive"):
        report_forward(actor=c.fsa_coordinator, report=submitted_report, organizations=[c.bank_b])


# --- Links and classification ----------------------------------------------------------------------


def test_link_and_unlink_need_triage_on_both(sharing_community, submitted_report):
    c = sharing_community
    other = report_for(c.bank_b_reporter, c.bank_b)
    hospital_report = report_for(c.hospital_reporter, c.hospital)
    report_link(actor=c.fsa_coordinator, report=submitted_report, other=other)
    assert list(other.linked.all()) == [submitted_report]
    assert AuditRecord.objects.filter(object_id=str(submitted_report.pk), action="update").count() == 1
    report_link(actor=c.fsa_coordinator, report=submitted_report, other=other)  # idempotent
    assert AuditRecord.objects.filter(object_id=str(submitted_report.pk), action="update").count() == 1
    with pytest.raises(ValidationError, match="cannot triage"):
        report_link(actor=c.fsa_coordinator, report=submitted_report, other=hospital_report)
    with pytest.raises(ValidationError, match="cannot triage"):
        report_link(actor=c.bank_a_officer, report=submitted_report, other=other)
    with pytest.raises(ValidationError, match="itself"):
        report_link(actor=c.fsa_coordinator, report=submitted_report, other=submitted_report)
    report_link(actor=c.nisc_coordinator, report=submitted_report, other=hospital_report)
    with pytest.raises(ValidationError, match="cannot triage"):
        report_unlink(actor=c.fsa_coordinator, report=submitted_report, other=hospital_report)
    report_unlink(actor=c.nisc_coordinator, report=other, other=submitted_report)
    assert list(submitted_report.linked.all()) == [hospital_report]


def test_reclassify_keeps_history(sharing_community, submitted_report):
    c = sharing_community
    classification = report_reclassify(
        actor=c.fsa_coordinator,
        report=submitted_report,
        cause=cause("intentional.malware"),
        note=" 検体解析の結果 ",
    )
    submitted_report.refresh_from_db()
    assert submitted_report.cause.code == "intentional.malware"
    assert classification.note == "検体解析の結果"
    history = CauseClassification.objects.filter(report=submitted_report)
    assert [(h.cause.code, h.classified_by) for h in history] == [
        ("intentional.intrusion", c.bank_a_reporter),
        ("intentional.malware", c.fsa_coordinator),
    ]
    record = AuditRecord.objects.filter(object_id=str(submitted_report.pk)).order_by("-pk").first()
    assert (record.before["cause_id"], record.after["cause_id"]) == (
        cause("intentional.intrusion").pk,
        cause("intentional.malware").pk,
    )


def test_reclassify_validation_and_permissions(sharing_community, submitted_report):
    c = sharing_community
    retired = cause("accidental.contractor")
    retired.active = False
    retired.save()
    red = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.RED)
    for actor, report, new_cause, message in [
        (c.fsa_coordinator, submitted_report, cause("intentional.intrusion"), "already classified"),
        (c.fsa_coordinator, submitted_report, retired, "retired"),
        (c.bank_a_officer, submitted_report, cause("unknown"), "cannot triage"),
        (c.mhlw_coordinator, submitted_report, cause("unknown"), "cannot triage"),
        # On TLP:RED only triage staff named on the report (by default the duty coordinators).
        (c.fsa_analyst, red, cause("unknown"), "cannot triage"),
    ]:
        with pytest.raises(ValidationError, match=message):
            report_reclassify(actor=actor, report=report, cause=new_cause)
    assert CauseClassification.objects.count() == 2
    assert report_reclassify(actor=c.fsa_coordinator, report=red, cause=cause("intentional.malware"))


# --- Relabelling ------------------------------------------------------------------------------------


def test_the_source_lowers_and_raises_its_label(sharing_community, submitted_report):
    c = sharing_community
    assert report_relabel(actor=c.bank_a_reporter, report=submitted_report, tlp=Tlp.GREEN).tlp == Tlp.GREEN
    assert report_relabel(actor=c.bank_a_admin, report=submitted_report, tlp=Tlp.AMBER_STRICT).tlp == (
        Tlp.AMBER_STRICT
    )
    record = AuditRecord.objects.filter(object_id=str(submitted_report.pk)).order_by("-pk").first()
    assert (record.before["tlp"], record.after["tlp"], record.after["source_consent"]) == (
        Tlp.GREEN,
        Tlp.AMBER_STRICT,
        False,
    )


def test_the_centre_relabels_only_with_recorded_consent(sharing_community, submitted_report):
    c = sharing_community
    with pytest.raises(ValidationError, match="consent"):
        report_relabel(actor=c.nisc_coordinator, report=submitted_report, tlp=Tlp.GREEN)
    assert Report.objects.get(pk=submitted_report.pk).tlp == Tlp.AMBER
    report_relabel(actor=c.nisc_coordinator, report=submitted_report, tlp=Tlp.GREEN, source_consent=True)
    record = AuditRecord.objects.filter(object_id=str(submitted_report.pk)).order_by("-pk").first()
    assert (record.actor, record.after["tlp"], record.after["source_consent"]) == (
        c.nisc_coordinator,
        Tlp.GREEN,
        True,
    )


@pytest.mark.parametrize(
    "actor", ["fsa_coord", "bank_ceptoar_officer", "bank_b_officer", "hospital_reporter"]
)
def test_nobody_else_relabels(sharing_community, submitted_report, actor):
    with pytest.raises(ValidationError, match="Only the reporting organization"):
        report_relabel(
            actor=User.objects.get(username=actor),
            report=submitted_report,
            tlp=Tlp.CLEAR,
            source_consent=True,
        )
    assert Report.objects.get(pk=submitted_report.pk).tlp == Tlp.AMBER


def test_raising_to_red_names_the_duty_coordinators(sharing_community, submitted_report):
    c = sharing_community
    report_relabel(actor=c.bank_a_officer, report=submitted_report, tlp=Tlp.RED)
    assert who_sees(submitted_report) == {"bank_a_reporter", "bank_a_officer", "fsa_coord", "nisc_coord"}
    assert audit_count(ReportGrant) == 2


def test_raising_to_red_keeps_people_named_before_and_adds_the_chain(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.AMBER_STRICT)
    report_forward(actor=c.fsa_coordinator, report=report, users=[c.fsa_analyst])
    report_relabel(actor=c.bank_a_reporter, report=report, tlp=Tlp.RED)
    assert who_sees(report) == {"bank_a_reporter", "bank_a_officer", "fsa_analyst", "fsa_coord", "nisc_coord"}


def test_raising_to_red_without_anyone_to_name_is_refused(sharing_community, submitted_report):
    c = sharing_community
    User.objects.filter(username__in=["fsa_coord", "nisc_coord"]).update(is_active=False)
    with pytest.raises(ValidationError, match="named recipients"):
        report_relabel(actor=c.bank_a_officer, report=submitted_report, tlp=Tlp.RED)
    assert Report.objects.get(pk=submitted_report.pk).tlp == Tlp.AMBER


def test_the_source_lowers_red_and_the_routed_organizations_see_it_again(sharing_community):
    c = sharing_community
    report = report_for(c.bank_a_reporter, c.bank_a, tlp=Tlp.RED)
    report_relabel(actor=c.bank_a_reporter, report=report, tlp=Tlp.AMBER)
    assert who_sees(report) == members_of(c.bank_a, c.fsa, c.nisc)


def test_relabel_validation(sharing_community, submitted_report):
    c = sharing_community
    with pytest.raises(ValidationError, match="Unknown TLP label PINK"):
        report_relabel(actor=c.bank_a_reporter, report=submitted_report, tlp="PINK")
    with pytest.raises(ValidationError, match="already has"):
        report_relabel(actor=c.bank_a_reporter, report=submitted_report, tlp=Tlp.AMBER)


# --- Advisories -------------------------------------------------------------------------------------


def test_advisory_issue_records_audience_and_queues_fan_out(
    sharing_community, queued, django_capture_on_commit_callbacks
):
    c = sharing_community
    due = timezone.now() + dt.timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        advisory = advisory_issue(
            issuer=c.nisc_coordinator,
            organization=c.nisc,
            data=advisory_input(
                sectors=["finance", "medical"],
                organization_types=[OrganizationType.RELATED_AGENCY],
                organizations=[str(c.partner.pk)],
                people=["fsa_coord"],
                ack_required=True,
                ack_due=due,
            ),
        )
    assert advisory.issuer == c.nisc and advisory.issued_by == c.nisc_coordinator
    assert {str(e) for e in advisory.audience.all()} == {
        str(c.finance),
        str(c.medical),
        str(OrganizationType.RELATED_AGENCY.label),
        str(c.partner),
        str(c.fsa_coordinator),
    }
    assert queued["advisory_fan_out"].calls == [{"advisory_id": str(advisory.pk)}]
    assert audit_count(Advisory) == 1
    assert {"hospital_reporter", "fsa_coord", "partner_analyst"} <= who_sees(advisory)
    assert "mhlw_coord" not in who_sees(advisory)


def test_red_advisory_goes_to_named_people_only(sharing_community):
    c = sharing_community
    advisory = advisory_for(c.nisc_coordinator, c.nisc, tlp=Tlp.RED, people=[c.bank_a_officer])
    assert who_sees(advisory) == {"bank_a_officer"} | members_of(c.nisc)
    with pytest.raises(ValidationError, match="named people only"):
        advisory_for(c.nisc_coordinator, c.nisc, tlp=Tlp.RED, people=[c.bank_a_officer], sectors=[c.finance])
    with pytest.raises(ValidationError, match="named people only"):
        advisory_for(c.nisc_coordinator, c.nisc, tlp=Tlp.RED, all_ci=True)


def test_the_label_caps_an_advisorys_audience(sharing_community):
    c = sharing_community
    for overrides, message in [
        ({"tlp": Tlp.AMBER_STRICT, "sectors": [c.finance]}, "named organizations and people only"),
        ({"tlp": Tlp.AMBER_STRICT, "all_ci": True}, "named organizations and people only"),
        ({"tlp": Tlp.GREEN, "organization_types": [OrganizationType.PUBLIC]}, "outside the critical"),
        (
            {"tlp": Tlp.AMBER, "organizations": [c.public]},
            "outside the critical-infrastructure community: Citizen",
        ),
        ({"tlp": Tlp.GREEN, "people": [c.citizen]}, "community: citizen"),
    ]:
        with pytest.raises(ValidationError, match=message):
            advisory_for(c.nisc_coordinator, c.nisc, **overrides)
    strict = advisory_for(c.nisc_coordinator, c.nisc, tlp=Tlp.AMBER_STRICT, organizations=[c.bank_a])
    assert who_sees(strict) == members_of(c.bank_a, c.nisc)
    public = advisory_for(
        c.nisc_coordinator, c.nisc, tlp=Tlp.CLEAR, organization_types=[OrganizationType.PUBLIC]
    )
    assert "citizen" in who_sees(public)
    # A bilateral partner is named explicitly; it is not part of "all CI".
    partner = advisory_for(c.nisc_coordinator, c.nisc, tlp=Tlp.AMBER, organizations=[c.partner])
    assert "partner_analyst" in who_sees(partner)


def test_a_ministry_addresses_the_sectors_it_oversees(sharing_community):
    c = sharing_community
    advisory = advisory_for(c.fsa_coordinator, c.fsa, sectors=[c.finance], organizations=[c.bank_a])
    assert "bank_b_reporter" in who_sees(advisory)
    for overrides, message in [
        ({"sectors": [c.medical]}, "does not oversee"),
        ({"all_ci": True}, "Only the national centre"),
        ({"organization_types": [OrganizationType.OPERATOR]}, "Only the national centre"),
        ({"organizations": [c.hospital]}, "Midori Hospital are outside"),
        ({"people": [c.hospital_reporter]}, "hospital_reporter are outside"),
    ]:
        with pytest.raises(ValidationError, match=message):
            advisory_for(c.fsa_coordinator, c.fsa, **overrides)


def test_a_ceptoar_addresses_its_members(sharing_community):
    c = sharing_community
    advisory = advisory_for(c.ceptoar_officer, c.bank_ceptoar, organizations=[c.bank_a, c.bank_b])
    assert members_of(c.bank_a, c.bank_b, c.bank_ceptoar) == who_sees(advisory)
    for overrides, message in [
        ({"sectors": [c.finance]}, "not whole sectors"),
        ({"organizations": [c.hospital]}, "outside"),
        ({"people": [c.securities_officer]}, "outside"),
        ({"all_ci": True}, "Only the national centre"),
    ]:
        with pytest.raises(ValidationError, match=message):
            advisory_for(c.ceptoar_officer, c.bank_ceptoar, **overrides)


@pytest.mark.parametrize(
    ("issuer", "organization"),
    [
        ("bank_a_officer", "bank_a"),  # operators do not issue advisories
        ("fsa_analyst", "fsa"),  # analysts do not issue
        ("fsa_coord", "nisc"),  # not a member of the organization named as issuer
        ("partner_analyst", "partner"),
    ],
)
def test_only_coordinators_and_officers_of_issuing_bodies_issue(sharing_community, issuer, organization):
    c = sharing_community
    with pytest.raises(ValidationError, match="Advisories are issued by"):
        advisory_for(User.objects.get(username=issuer), getattr(c, organization), all_ci=True)
    assert not Advisory.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sectors": ["finance", "banking"]}, "Unknown sector code: banking"),
        ({"organization_types": ["isac"]}, "Unknown organization type: isac"),
        ({"organizations": ["999999"]}, "Unknown organization: 999999"),
        ({"organizations": ["abc"]}, "Unknown organization: abc"),
        ({"people": ["nobody"]}, "Unknown user: nobody"),
        ({}, "Choose an audience"),
        ({"all_ci": True, "title": " "}, "title is required"),
        ({"all_ci": True, "title": "t" * 201}, "longer than 200"),
        ({"all_ci": True, "body": ""}, "needs a body"),
        ({"all_ci": True, "severity": "apocalyptic"}, "Unknown severity apocalyptic"),
        ({"all_ci": True, "tlp": "WHITE"}, "Unknown TLP label WHITE"),
        ({"all_ci": True, "ack_due": timezone.now() + dt.timedelta(days=1)}, "needs acknowledgement"),
        (
            {"all_ci": True, "ack_required": True, "ack_due": timezone.now() - dt.timedelta(hours=1)},
            "in the past",
        ),
        ({"all_ci": True, "source_reports": ["not-a-uuid"]}, "Unknown report: not-a-uuid"),
    ],
)
def test_advisory_validation(sharing_community, overrides, message):
    c = sharing_community
    with pytest.raises(ValidationError, match=message):
        advisory_for(c.nisc_coordinator, c.nisc, **overrides)
    assert (Advisory.objects.count(), AdvisoryAudience.objects.count(), audit_count(Advisory)) == (0, 0, 0)


def test_advisory_source_reports_must_be_visible_to_the_issuer(sharing_community, submitted_report):
    c = sharing_community
    hospital_report = report_for(c.hospital_reporter, c.hospital)
    with pytest.raises(ValidationError, match=f"Unknown report: {hospital_report.pk}"):
        advisory_for(c.fsa_coordinator, c.fsa, sectors=[c.finance], source_reports=[hospital_report])
    advisory = advisory_for(c.fsa_coordinator, c.fsa, sectors=[c.finance], source_reports=[submitted_report])
    assert list(advisory.source_reports.all()) == [submitted_report]
    # The link is there for everyone in the audience; the report itself only for those who see it.
    assert not Report.objects.restrict(c.bank_b_reporter).filter(advisories=advisory).exists()
    assert Report.objects.restrict(c.bank_a_reporter).filter(advisories=advisory).exists()


# --- Acknowledgements -------------------------------------------------------------------------------


def test_acknowledge_once_per_organization(sharing_community):
    c = sharing_community
    advisory = advisory_for(c.nisc_coordinator, c.nisc, sectors=[c.finance], ack_required=True)
    first = advisory_acknowledge(user=c.bank_a_reporter, advisory=advisory)
    assert (first.organization, first.user) == (c.bank_a, c.bank_a_reporter)
    assert advisory_acknowledge(user=c.bank_a_admin, advisory=advisory) == first
    assert advisory_acknowledge(user=c.bank_a_reporter, advisory=advisory, organization=c.bank_a) == first
    assert Acknowledgement.objects.count() == 1
    assert audit_count(Acknowledgement) == 1
    advisory_acknowledge(user=c.bank_b_reporter, advisory=advisory)
    assert set(advisory.acknowledgements.values_list("organization__name_en", flat=True)) == {
        "Sakura Bank",
        "Momiji Bank",
    }


def test_acknowledge_only_from_the_audience(sharing_community):
    c = sharing_community
    advisory = advisory_for(c.nisc_coordinator, c.nisc, sectors=[c.finance], ack_required=True)
    with pytest.raises(ValidationError, match="cannot acknowledge"):
        advisory_acknowledge(user=c.hospital_reporter, advisory=advisory)
    # The issuer sees its advisory but is not its audience.
    with pytest.raises(ValidationError, match="not in this advisory's audience"):
        advisory_acknowledge(user=c.nisc_analyst, advisory=advisory)
    with pytest.raises(ValidationError, match="do not belong to Momiji Bank"):
        advisory_acknowledge(user=c.bank_a_reporter, advisory=advisory, organization=c.bank_b)
    everyone_in_ci = advisory_for(c.nisc_coordinator, c.nisc, all_ci=True, ack_required=True)
    with pytest.raises(ValidationError, match="not in this advisory's audience"):
        advisory_acknowledge(user=c.nisc_analyst, advisory=everyone_in_ci, organization=c.nisc)
    assert advisory_acknowledge(user=c.fsa_coordinator, advisory=everyone_in_ci).organization == c.fsa
    assert list(Acknowledgement.objects.values_list("advisory", flat=True)) == [everyone_in_ci.pk]


def test_a_named_person_acknowledges_for_their_organization(sharing_community):
    c = sharing_community
    advisory = advisory_for(c.nisc_coordinator, c.nisc, tlp=Tlp.RED, people=[c.hospital_reporter])
    assert advisory_acknowledge(user=c.hospital_reporter, advisory=advisory).organization == c.hospital
    hospital_colleague = member(c.hospital, Role.OFFICER, "hospital_officer")
    with pytest.raises(ValidationError, match="cannot acknowledge"):
        advisory_acknowledge(user=hospital_colleague, advisory=advisory)


# --- Anonymized copies ------------------------------------------------------------------------------


@pytest.fixture
def rich_report(sharing_community):
    """A consenting report with observables and an attachment, timed to the second."""
    c = sharing_community
    detected = timezone.now().replace(microsecond=0) - dt.timedelta(days=3, hours=5, minutes=17, seconds=9)
    return report_for(
        c.bank_a_reporter,
        c.bank_a,
        title="さくら銀行 ネットバンキングへの不正アクセス",
        narrative="bank_a_reporter が 203.0.113.7 からの不審な通信を検知した。",
        detected_at=detected,
        occurred_at=detected - dt.timedelta(minutes=43, seconds=11),
        anonymized_copy_consent=True,
        observables=[
            ("ipv4-addr", "203.0.113.7"),
            ("domain-name", "Evil.Example.COM"),
            ("url", "https://x.test/a"),
        ],
        attachments=[AttachmentInput("sakura-netbank-firewall.log", "text/plain", b"log")],
    )


def test_anonymized_copy_leaks_nothing_of_the_source(sharing_community, rich_report):
    c = sharing_community
    copy = anonymized_copy_for(
        c.nisc_coordinator,
        rich_report,
        title="金融機関への不正アクセス",
        narrative="ある金融機関で外部からの不審な通信が検知された。",
        keep_sector=False,
        observables=[("ipv4-addr", "203.0.113.7"), ("domain-name", "evil.example.com")],
    )
    assert copy.sector is None
    assert copy.occurred_month == timezone.localtime(rich_report.occurred_at).date().replace(day=1)
    assert copy.pk != rich_report.pk
    assert [(o.type, o.value) for o in copy.observables.all()] == [
        ("ipv4-addr", "203.0.113.7"),
        ("domain-name", "evil.example.com"),
    ]
    # No field points at the reporting organization or the reporter ...
    rows = [copy, *copy.audience.all(), *copy.observables.all()]
    for row in rows:
        for field in row._meta.concrete_fields:
            if field.name == "source":
                continue  # the link back, shown only to those who see the original (test below)
            value = field.value_from_object(row)
            if field.is_relation and field.related_model is Organization:
                assert value != c.bank_a.pk, field
            if field.is_relation and field.related_model is User:
                assert value != c.bank_a_reporter.pk, field
    # ... no text names them, the original's id or its attachment ...
    text = repr([model_to_dict(row, exclude=["source", "id", "copy"]) for row in rows])
    for secret in (
        str(rich_report.pk),
        rich_report.pk.hex,
        c.bank_a.name_ja,
        c.bank_a.name_en,
        "bank_a_reporter",
        "sakura-netbank-firewall.log",
    ):
        assert secret not in text, secret
    # ... and no time is more precise than the month.
    source_times = {rich_report.occurred_at, rich_report.detected_at, rich_report.created_at}
    for field in AnonymizedReport._meta.concrete_fields:
        assert field.value_from_object(copy) not in source_times, field
    assert isinstance(copy.occurred_month, dt.date) and copy.occurred_month.day == 1


def test_anonymized_copy_refuses_an_observable_that_names_the_source(sharing_community):
    c = sharing_community
    report = report_for(
        c.bank_a_reporter,
        c.bank_a,
        anonymized_copy_consent=True,
        observables=[
            ObservableInput("email-addr", "Phish@Example.JP"),
            ObservableInput("ipv4-addr", "192.0.2.1"),
        ],
    )
    with pytest.raises(ValidationError, match=r"example\.jp, which identifies") as raised:
        anonymized_copy_for(
            c.nisc_coordinator, report, observables=[ObservableInput("email-addr", "phish@example.jp")]
        )
    assert list(raised.value.message_dict) == ["observables"]
    copy = anonymized_copy_for(
        c.nisc_coordinator, report, observables=[ObservableInput("ipv4-addr", "192.0.2.1")]
    )
    assert list(copy.observables.values_list("value", flat=True)) == ["192.0.2.1"]


def test_anonymized_copy_keeps_the_sector_when_asked(sharing_community, rich_report):
    copy = anonymized_copy_for(sharing_community.bank_a_reporter, rich_report, keep_sector=True)
    assert copy.sector == rich_report.sector
    assert copy.cause == rich_report.cause and copy.kind == rich_report.kind


def test_anonymized_copy_has_its_own_audience_and_hides_the_link(sharing_community, rich_report):
    c = sharing_community
    copy = anonymized_copy_for(c.nisc_coordinator, rich_report)  # GREEN, all CI
    readers = who_sees(copy)
    assert {"hospital_reporter", "bank_b_reporter", "mhlw_coord", "nisc_coord"} <= readers
    assert not {"partner_analyst", "citizen"} & readers
    # The way back to the original exists only for those who see the original.
    originals = {
        u.username for u in everyone() if Report.objects.restrict(u).filter(anonymized_copies=copy).exists()
    }
    assert originals == who_sees(rich_report)
    assert "hospital_reporter" not in originals


def test_red_anonymized_copy_needs_named_people(sharing_community, rich_report):
    c = sharing_community
    with pytest.raises(ValidationError, match="named people only"):
        anonymized_copy_for(c.nisc_coordinator, rich_report, tlp=Tlp.RED)
    copy = anonymized_copy_for(
        c.nisc_coordinator, rich_report, tlp=Tlp.RED, all_ci=False, people=["mhlw_coord"]
    )
    assert who_sees(copy) == {"mhlw_coord"}


def test_anonymized_copy_is_audited(sharing_community, rich_report):
    copy = anonymized_copy_for(sharing_community.nisc_analyst, rich_report)
    record = AuditRecord.objects.get(object_type="sharing.anonymizedreport")
    assert (record.object_id, record.actor) == (str(copy.pk), sharing_community.nisc_analyst)


@pytest.mark.parametrize(
    "actor", ["fsa_coord", "bank_b_reporter", "hospital_reporter", "bank_ceptoar_officer"]
)
def test_only_the_centre_or_the_source_anonymizes(sharing_community, rich_report, actor):
    with pytest.raises(ValidationError, match="Only the national centre or the reporting organization"):
        anonymized_copy_for(User.objects.get(username=actor), rich_report)
    assert not AnonymizedReport.objects.exists()


def test_anonymized_copy_needs_consent(sharing_community, submitted_report):
    with pytest.raises(ValidationError, match="not consented"):
        anonymized_copy_for(sharing_community.nisc_coordinator, submitted_report)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"observables": [("ipv4-addr", "999.1.1.1")]}, "999.1.1.1 is not a valid ipv4-addr"),
        (
            {"observables": [("ipv4-addr", "198.51.100.1")]},
            "198.51.100.1 is not an observable of the original",
        ),
        ({"observables": [("hostname", "a.example")]}, "Unknown observable type hostname"),
        ({"narrative": "さくら銀行で発生"}, "さくら銀行, which identifies the source"),
        ({"title": "Incident at SAKURA BANK"}, "Sakura Bank, which identifies the source"),
        ({"narrative": "reported by bank_a_reporter"}, "bank_a_reporter"),
        ({"narrative": "連絡先 soc@example.jp"}, r"example\.jp, which identifies the source"),
        ({"narrative": ""}, "needs a narrative"),
        ({"title": ""}, "title is required"),
        ({"tlp": "AMBER-ish"}, "Unknown TLP label"),
        ({"all_ci": False}, "Choose an audience"),
        ({"sectors": ["nowhere"]}, "Unknown sector code: nowhere"),
    ],
)
def test_anonymized_copy_validation(sharing_community, rich_report, overrides, message):
    audits = AuditRecord.objects.count()
    with pytest.raises(ValidationError, match=message):
        anonymized_copy_for(sharing_community.nisc_coordinator, rich_report, **overrides)
    assert not AnonymizedReport.objects.exists()
    assert AuditRecord.objects.count() == audits
