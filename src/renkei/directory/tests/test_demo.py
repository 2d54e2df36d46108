"""`renkei demo`: the fictitious community on top of the reference data."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings
from django.utils import translation
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.audit.models import AuditRecord
from renkei.audit.services import audit_verify, audit_write
from renkei.directory.choices import TWO_FACTOR_ORGANIZATION_TYPES, OrganizationType, Role
from renkei.directory.demo import (
    DEMO_ORGANIZATIONS,
    DEMO_PASSWORD,
    DEMO_TOTP_KEY,
    EXAMPLE_LOGINS,
    OPERATORS,
    demo_load,
)
from renkei.directory.models import ContactRoute, Membership, Organization, Sector, User


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def run_demo(*args) -> str:
    stdout = io.StringIO()
    call_command("demo", *args, stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()


def snapshot_counts() -> dict[str, int]:
    return {
        "organizations": Organization.objects.count(),
        "active_organizations": Organization.objects.filter(active=True).count(),
        "contact_routes": ContactRoute.objects.count(),
        "users": User.objects.count(),
        "active_users": User.objects.filter(is_active=True).count(),
        "memberships": Membership.objects.count(),
        "devices": TOTPDevice.objects.count(),
        "audit": AuditRecord.objects.count(),
    }


# The same as conftest's function-scoped setting, for the module-wide demo.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def _demo_loaded_once(django_db_setup, django_db_blocker):
    """Load the demo once for the module, inside a transaction that is rolled back at its end.

    Each test's own transaction nests inside it as a savepoint, so tests that change the demo
    (reset, repairs) still start from the same fresh community.
    """
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        translation.override("en"),
        transaction.atomic(),
    ):
        yield run_demo()
        transaction.set_rollback(True)


@pytest.fixture
def demo(_demo_loaded_once, db):
    return _demo_loaded_once


def test_demo_prints_the_password_example_logins_and_the_totp_note(demo):
    assert f"password: {DEMO_PASSWORD}" in demo
    for username in EXAMPLE_LOGINS:
        assert username in demo
    assert "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" in demo
    assert "renkei demo --otp nco-coordinator" in demo


def test_every_sector_has_three_operators_under_its_ceptoar(demo):
    for sector in Sector.objects.all():
        operators = Organization.objects.filter(type=OrganizationType.OPERATOR, sectors=sector)
        assert operators.count() >= 3, sector.code
        assert operators.filter(size="large").exists() and operators.filter(size="sme").exists()
        for operator in operators:
            assert operator.parent.type == OrganizationType.CEPTOAR
            assert sector in operator.parent.sectors.all()
            assert operator.name_en
    for spec in OPERATORS:
        number = spec.key.rsplit("op", 1)[1]
        if number == "1":
            assert spec.size == "large", spec.key
        if number == "3":
            assert spec.size == "sme", spec.key


def test_every_organization_has_contact_routes_and_every_role(demo):
    organizations = Organization.objects.exclude(type=OrganizationType.PUBLIC)
    assert set(organizations.values_list("type", flat=True)) == set(OrganizationType.values) - {"public"}
    assert Organization.objects.filter(type=OrganizationType.VENDOR).count() == 2
    assert Organization.objects.filter(type=OrganizationType.INTERNATIONAL_PARTNER).count() == 1
    for organization in organizations:
        routes = organization.contact_routes.all()
        assert len(routes) >= 2, organization.name_ja
        assert any(r.kind == "email" and r.value.endswith(".example.jp") for r in routes)
        roles = set(organization.memberships.values_list("role", flat=True))
        assert roles == set(Role.values), organization.name_ja


def test_usernames_follow_the_convention_and_share_the_demo_password(demo):
    for spec in DEMO_ORGANIZATIONS:
        organization = Organization.objects.get(name_ja=spec.name_ja)
        for role in Role.values:
            user = User.objects.get(username=f"{spec.key}-{role}")
            assert user.memberships.filter(organization=organization, role=role).exists()
    second = User.objects.get(username="nco-coordinator-2")
    assert second.memberships.get().organization.type == OrganizationType.NATIONAL_CENTER
    assert second.display_name != User.objects.get(username="nco-coordinator").display_name
    for username in (
        "finance-op1-reporter",
        "nco-coordinator",
        "nco-coordinator-2",
        "fsa-coordinator",
        "ceptoar-finance-banks-officer",
    ):
        assert User.objects.get(username=username).check_password(DEMO_PASSWORD)
    assert User.objects.get(username="partner1-officer").language == "en"


def test_two_factor_devices_exactly_for_government_staff(demo):
    with_device = set(
        TOTPDevice.objects.filter(confirmed=True, key=DEMO_TOTP_KEY).values_list("user_id", flat=True)
    )
    must_use = set(
        Membership.objects.filter(organization__type__in=TWO_FACTOR_ORGANIZATION_TYPES).values_list(
            "user_id", flat=True
        )
    )
    assert with_device == must_use
    assert User.objects.get(username="mofa-analyst").pk in with_device
    assert User.objects.get(username="npa-analyst").pk in with_device
    assert User.objects.get(username="jpcert-analyst").pk not in with_device


def test_demo_is_idempotent(demo):
    before = snapshot_counts()
    output = run_demo()
    assert "nothing changed" in output
    assert snapshot_counts() == before
    assert audit_verify().ok


def test_demo_restores_missing_pieces_without_touching_the_rest(demo):
    user = User.objects.get(username="gas-op2-analyst")
    Membership.objects.filter(user=user).delete()
    Organization.objects.get(name_ja="警察庁").contact_routes.all().delete()
    TOTPDevice.objects.filter(user__username="meti-executive").delete()
    User.objects.filter(username="water-op3-officer").update(is_active=False)
    before = snapshot_counts()

    run_demo()

    assert user.memberships.filter(role="analyst").exists()
    assert Organization.objects.get(name_ja="警察庁").contact_routes.count() == 2
    assert TOTPDevice.objects.filter(user__username="meti-executive").exists()
    assert not User.objects.get(username="water-op3-officer").is_active
    assert snapshot_counts()["users"] == before["users"]


def test_demo_reset_recreates_the_demo_and_retires_accounts_the_audit_trail_refers_to(demo):
    fresh = snapshot_counts()
    ceptoars = set(Organization.objects.filter(type=OrganizationType.CEPTOAR).values_list("pk", flat=True))
    outsider = User.objects.create_user("outsider", password="x" * 12)
    # Someone who signed in, and nothing else: no sample report, comment or acknowledgement is theirs.
    signed_in = User.objects.get(username="finance-op2-reporter")
    audit_write(actor=signed_in, action="login", obj=signed_in)
    User.objects.filter(username="finance-op2-executive").update(display_name="changed")

    output = run_demo("--reset")

    # The sample content's authors are in the audit trail too: reporters, the ministry that asked,
    # the national centre, the CEPTOAR, people named on the TLP:RED report, those who acknowledged.
    retired = User.objects.filter(username__contains="(retired #")
    retired_organizations = Organization.objects.filter(name_ja__contains="(retired #")
    assert f"{retired.count()} deactivated" in output
    assert f"{retired_organizations.count()} deactivated" in output
    for username in ("finance-op2-reporter", "finance-op1-reporter", "fsa-coordinator", "meti-coordinator"):
        old = retired.get(username__startswith=f"{username} (retired")
        assert not old.is_active
        new = User.objects.get(username=username)
        assert new.pk != old.pk and new.is_active
        assert new.check_password(DEMO_PASSWORD)
    assert not User.objects.filter(username__startswith="finance-op2-executive (retired").exists()
    assert User.objects.get(username="finance-op2-executive").display_name != "changed"
    after = snapshot_counts()
    assert after["active_users"] == fresh["active_users"] + 1  # the outsider
    assert after["users"] == fresh["users"] + 1 + retired.count()
    assert after["active_organizations"] == fresh["active_organizations"]
    assert after["organizations"] == fresh["organizations"] + retired_organizations.count()
    # Reference data and people outside the demo are left alone.
    assert (
        set(Organization.objects.filter(type=OrganizationType.CEPTOAR).values_list("pk", flat=True))
        == ceptoars
    )
    assert User.objects.filter(pk=outsider.pk, is_active=True).exists()
    assert audit_verify().ok


def test_demo_otp_prints_a_code_the_device_accepts(demo):
    stdout = io.StringIO()
    call_command("demo", "--otp", "nco-coordinator", stdout=stdout, stderr=io.StringIO())
    code = stdout.getvalue().strip()
    assert len(code) == 6 and code.isdigit()
    device = TOTPDevice.objects.get(user__username="nco-coordinator")
    assert device.verify_token(code)


def test_demo_otp_only_reveals_codes_of_the_published_demo_key(demo):
    with pytest.raises(CommandError, match="finance-op1-reporter has no demo two-factor device"):
        run_demo("--otp", "finance-op1-reporter")
    TOTPDevice.objects.filter(user__username="fsa-analyst").update(key="ab" * 20)
    with pytest.raises(CommandError, match="fsa-analyst has no demo two-factor device"):
        run_demo("--otp", "fsa-analyst")


def test_demo_is_quiet_at_verbosity_zero(db):
    stdout = io.StringIO()
    call_command("demo", verbosity=0, stdout=stdout)
    assert stdout.getvalue() == ""
    assert User.objects.filter(username="nco-coordinator").exists()


def test_demo_refuses_a_production_installation(db, settings):
    settings.PRODUCTION = True
    users_before = User.objects.count()
    with pytest.raises(ValidationError, match="production"):
        demo_load()
    assert User.objects.count() == users_before
