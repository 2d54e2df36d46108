"""Directory services: validation, auditing, bulk import, removal and provisioning."""

import pytest
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.utils import translation
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.audit.models import AuditRecord
from renkei.audit.services import audit_verify, audit_write
from renkei.core.services import token_create
from renkei.directory.models import ContactRoute, Membership, Organization, Sector, User
from renkei.directory.services import (
    ContactInput,
    OrganizationImportRow,
    contact_routes_replace,
    membership_add,
    organization_by_name,
    organization_create,
    organization_remove,
    organization_update,
    organizations_import,
    two_factor_device_add,
    user_create,
    user_remove,
)

ROUTES = [ContactInput("email", "soc@example.jp"), ContactInput("phone", "03-0000-0000")]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def last_audit() -> AuditRecord:
    return AuditRecord.objects.order_by("-pk").first()


# --- organizations -------------------------------------------------------------------------------


def test_organization_create_records_routes_and_audits(reference_data):
    finance = Sector.objects.get(code="finance")
    bank = organization_create(
        actor=None,
        name_ja=" 青葉銀行 ",
        name_en="Aoba Bank",
        org_type="operator",
        sectors=[finance],
        parent=organization_by_name("銀行等セプター"),
        size="large",
        contacts=ROUTES,
    )
    assert bank.name_ja == "青葉銀行"
    assert [(r.kind, r.priority) for r in bank.contact_routes.all()] == [("email", 1), ("phone", 2)]
    record = last_audit()
    assert (record.action, record.object_type, record.object_id) == (
        "create",
        "directory.organization",
        str(bank.pk),
    )
    assert record.after["contact_routes"] == ["email:soc@example.jp", "phone:03-0000-0000"]
    assert record.after["sectors"] == [finance.pk]


@pytest.mark.parametrize(
    ("contacts", "message"),
    [
        ([ContactInput("email", "soc@example.jp")], "at least 2 contact routes"),
        (
            [ContactInput("email", "not-an-address"), ROUTES[1]],
            "not-an-address is not a valid e-mail address.",
        ),
        ([ContactInput("pager", "123"), ROUTES[1]], "Unknown contact kind pager"),
        ([ROUTES[0], ROUTES[0]], "The same contact route is listed twice."),
        ([ROUTES[0], ContactInput("other", "x" * 255)], "at most 254 characters"),
    ],
)
def test_organization_create_validates_contact_routes(reference_data, contacts, message):
    with pytest.raises(ValidationError, match=message):
        organization_create(actor=None, name_ja="検証組織", org_type="vendor", contacts=contacts)
    assert not Organization.objects.filter(name_ja="検証組織").exists()


def test_organization_create_rejects_overlong_names(reference_data):
    with pytest.raises(ValidationError, match="at most 200 characters"):
        organization_create(actor=None, name_ja="長" * 201, org_type="vendor")


def test_organization_by_name_is_exact_and_reports_ambiguity(reference_data):
    assert organization_by_name("Financial Services Agency (FSA)").name_ja == "金融庁"
    with pytest.raises(ValidationError, match="Unknown organization: 金融"):
        organization_by_name("金融")
    organization_create(actor=None, name_ja="FSA別団体", name_en="金融庁別名", org_type="vendor")
    Organization.objects.filter(name_ja="FSA別団体").update(name_en="金融庁")
    with pytest.raises(ValidationError, match="More than one organization"):
        organization_by_name("金融庁")


def test_contact_routes_replace_keeps_two_and_audits(community):
    contact_routes_replace(
        actor=community.bank_a_admin,
        organization=community.bank_a,
        contacts=[ContactInput("phone", "03-0000-9999"), ContactInput("other", "衛星電話 090-0000-0000")],
    )
    assert sorted(community.bank_a.contact_routes.values_list("kind", flat=True)) == ["other", "phone"]
    record = last_audit()
    assert record.actor == community.bank_a_admin
    assert record.after == {"contact_routes": ["phone:03-0000-9999", "other:衛星電話 090-0000-0000"]}
    with pytest.raises(ValidationError, match="at least 2"):
        contact_routes_replace(actor=None, organization=community.bank_a, contacts=ROUTES[:1])
    assert community.bank_a.contact_routes.count() == 2


# --- bulk import ---------------------------------------------------------------------------------


def test_organizations_import_all_or_nothing(reference_data):
    rows = [
        OrganizationImportRow(row=2, name_ja="一番株式会社", type="operator", sectors="gas"),
        OrganizationImportRow(row=3, name_ja="二番株式会社", type="operator", sectors="gass"),
    ]
    organizations_before, audit_before = Organization.objects.count(), AuditRecord.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        organizations_import(actor=None, rows=rows)
    assert excinfo.value.messages == ["row 3: Unknown sector code: gass"]
    assert excinfo.value.error_list[0].params["row"] == 3
    assert Organization.objects.count() == organizations_before
    assert AuditRecord.objects.count() == audit_before


def test_organizations_import_keeps_percent_signs_in_messages(reference_data):
    rows = [OrganizationImportRow(row=2, name_ja="100%株式会社", type="operator", parent="50%団体")]
    with pytest.raises(ValidationError) as excinfo:
        organizations_import(actor=None, rows=rows)
    assert excinfo.value.messages == ["row 2: Unknown organization: 50%団体"]


def test_organizations_import_rolls_back_when_a_late_row_fails_on_write(reference_data, monkeypatch):
    """Checks catch nearly everything; if a write still fails, the rows before it are undone too."""
    from renkei.directory import services

    real_create = services.organization_create

    def create_failing_on_second(**kwargs):
        if kwargs["name_ja"] == "二番株式会社":
            raise ValidationError("disk full")
        return real_create(**kwargs)

    monkeypatch.setattr(services, "organization_create", create_failing_on_second)
    rows = [
        OrganizationImportRow(row=2, name_ja="一番株式会社", type="operator", sectors="gas"),
        OrganizationImportRow(row=3, name_ja="二番株式会社", type="operator", sectors="gas"),
    ]
    audit_before = AuditRecord.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        organizations_import(actor=None, rows=rows)
    assert excinfo.value.messages == ["row 3: disk full"]
    assert not Organization.objects.filter(name_ja="一番株式会社").exists()
    assert AuditRecord.objects.count() == audit_before
    assert audit_verify().ok


# --- people --------------------------------------------------------------------------------------


def test_user_create_with_a_precomputed_hash_and_no_welcome_mail(
    community, django_capture_on_commit_callbacks
):
    password_hash = make_password("shared demo password")
    with django_capture_on_commit_callbacks() as callbacks:
        user = user_create(
            actor=None,
            username="bulk1",
            organization=community.bank_a,
            role="analyst",
            email="bulk1@example.jp",
            password_hash=password_hash,
            send_welcome=False,
        )
    assert callbacks == []
    assert user.password == password_hash
    assert user.check_password("shared demo password")
    assert "password" not in last_audit().after


def test_user_create_queues_the_welcome_mail_on_commit(community, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        user_create(
            actor=None, username="mail1", organization=community.bank_a, role="reporter", email="m@example.jp"
        )
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"password_hash": "plain-text"}, "password hash is not in a known format"),
        ({"language": "fr"}, "Unknown language fr"),
        ({"role": "boss"}, "Unknown role boss"),
        ({"username": "x" * 151}, "too long"),
        ({"username": "  "}, "A username is required."),
    ],
)
def test_user_create_validation(community, options, message):
    arguments = {
        "actor": None,
        "username": "valid",
        "organization": community.bank_a,
        "role": "reporter",
    } | options
    users_before = User.objects.count()
    with pytest.raises(ValidationError, match=message):
        user_create(**arguments)
    assert User.objects.count() == users_before


def test_user_create_usernames_are_case_insensitively_unique(community):
    with pytest.raises(ValidationError, match="taken"):
        user_create(actor=None, username="BANK_A_REPORTER", organization=community.bank_a, role="reporter")


def test_membership_add_is_idempotent_and_audited_once(community):
    audit_before = AuditRecord.objects.count()
    membership_add(actor=None, user=community.bank_a_reporter, organization=community.bank_a, role="officer")
    membership_add(actor=None, user=community.bank_a_reporter, organization=community.bank_a, role="officer")
    assert community.bank_a_reporter.memberships.filter(role="officer").count() == 1
    assert AuditRecord.objects.count() == audit_before + 1


def test_user_remove_deletes_an_account_without_history(community):
    user = community.bank_b_reporter
    user_id = user.pk
    token_create(actor=None, user=user)
    assert user_remove(actor=None, user=user) is True
    assert not User.objects.filter(pk=user_id).exists()
    assert not Membership.objects.filter(user_id=user_id).exists()
    record = last_audit()
    assert (record.action, record.object_id, record.object_repr) == (
        "delete",
        str(user_id),
        "bank_b_reporter",
    )
    assert record.before["memberships"] == [[community.bank_b.pk, "reporter"]]
    assert audit_verify().ok


def test_user_remove_retires_an_account_the_audit_trail_refers_to(community):
    user = community.bank_b_reporter
    audit_write(actor=user, action="login", obj=user)
    assert user_remove(actor=None, user=user) is False
    user.refresh_from_db()
    assert not user.is_active
    assert not user.has_usable_password()
    assert user.username == f"bank_b_reporter (retired #{user.pk})"
    assert not user.memberships.exists()
    # The username is free again.
    user_create(actor=None, username="bank_b_reporter", organization=community.bank_b, role="reporter")
    assert audit_verify().ok


def test_organization_remove_deletes_or_retires(community):
    empty = organization_create(
        actor=None, name_ja="空の会社", name_en="Empty Co.", org_type="vendor", contacts=ROUTES
    )
    empty_id = empty.pk
    assert organization_remove(actor=None, organization=empty) is True
    assert not Organization.objects.filter(pk=empty_id).exists()
    assert not ContactRoute.objects.filter(organization_id=empty_id).exists()
    assert last_audit().before["contact_routes"] == ["E-mail: soc@example.jp", "Phone: 03-0000-0000"]

    # Members keep an organization in place (Membership.organization is PROTECT): it is retired.
    assert organization_remove(actor=None, organization=community.bank_b) is False
    community.bank_b.refresh_from_db()
    assert not community.bank_b.active
    assert community.bank_b.name_ja == f"もみじ銀行 (retired #{community.bank_b.pk})"
    assert community.bank_b.name_en == f"Momiji Bank (retired #{community.bank_b.pk})"
    assert organization_create(actor=None, name_ja="もみじ銀行", org_type="vendor")
    assert audit_verify().ok


def test_organization_update_audits_before_and_after(community):
    organization_update(actor=community.nisc_coordinator, organization=community.bank_b, size="large")
    record = last_audit()
    assert (record.before["size"], record.after["size"]) == ("sme", "large")
    assert record.actor == community.nisc_coordinator


def test_two_factor_device_add_gives_a_working_confirmed_device(community):
    key = "3132333435363738393031323334353637383930"
    device = two_factor_device_add(actor=None, user=community.fsa_coordinator, key=key, name="provisioned")
    assert device.confirmed
    code = TOTP(device.bin_key, device.step, device.t0, device.digits).token()
    assert TOTPDevice.objects.get(pk=device.pk).verify_token(f"{code:06d}")
    record = last_audit()
    assert (record.object_type, record.after["user"]) == ("otp_totp.totpdevice", community.fsa_coordinator.pk)
    with pytest.raises(ValidationError, match="hexadecimal"):
        two_factor_device_add(actor=None, user=community.fsa_coordinator, key="not hex", name="bad")
