"""Policies a reviewer would try to get round: who may restructure the directory, who must use
two-factor authentication, and what a lockout locks."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_otp.oath import TOTP

from renkei.core.accounts import totp_device_confirm, totp_device_start
from renkei.directory.models import Organization
from renkei.directory.services import organization_update
from renkei.directory.tests.factories import UserFactory

LOGIN = "/accounts/login/"


def test_an_org_admin_cannot_move_its_organization_into_another_chain(community):
    hospital = community.hospital
    with pytest.raises(ValidationError) as refused:
        organization_update(actor=community.bank_a_admin, organization=community.bank_a, parent=None)
    assert refused.value.code == "structure_forbidden"
    with pytest.raises(ValidationError):
        organization_update(
            actor=community.bank_a_admin, organization=community.bank_a, sectors=[community.medical]
        )
    with pytest.raises(ValidationError):
        organization_update(actor=community.bank_a_admin, organization=community.bank_a, name_ja="金融庁分室")
    community.bank_a.refresh_from_db()
    assert community.bank_a.parent == community.bank_ceptoar
    assert list(community.bank_a.sectors.all()) == [community.finance]
    assert hospital.parent is None


def test_an_org_admin_may_still_change_its_size_class(community):
    organization_update(actor=community.bank_a_admin, organization=community.bank_a, size="sme")
    assert Organization.objects.get(pk=community.bank_a.pk).size == "sme"


def test_the_national_centre_restructures_within_the_parent_rules(community):
    other_ceptoar = Organization.objects.get(name_ja="証券セプター")
    organization_update(actor=community.nisc_coordinator, organization=community.bank_b, parent=other_ceptoar)
    assert Organization.objects.get(pk=community.bank_b.pk).parent == other_ceptoar
    # An operator reports through a CEPTOAR, never through another operator (or a ministry).
    for wrong_parent in (community.bank_a, community.fsa):
        with pytest.raises(ValidationError) as refused:
            organization_update(
                actor=community.nisc_coordinator, organization=community.bank_b, parent=wrong_parent
            )
        assert refused.value.code == "parent_type"


def test_the_edit_form_does_not_offer_structure_to_an_org_admin(client, community):
    client.force_login(community.bank_a_admin)
    url = reverse("directory:organization_edit", args=[community.bank_a.pk])
    response = client.post(
        url, {"name_ja": "乗っ取り銀行", "sectors": [community.medical.pk], "size": "sme", "active": "on"}
    )
    assert response.status_code in (200, 302)
    community.bank_a.refresh_from_db()
    assert community.bank_a.name_ja == "さくら銀行"
    assert list(community.bank_a.sectors.all()) == [community.finance]


def test_superusers_must_pass_two_factor(client, db):
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(admin)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor_setup"))


def _fail(client, username: str, address: str) -> None:
    client.post(LOGIN, {"username": username, "password": "wrong-password"}, REMOTE_ADDR=address)


def _login(client, username: str, address: str):
    return client.post(LOGIN, {"username": username, "password": "renkei-test-password"}, REMOTE_ADDR=address)


def test_lockout_locks_the_username_and_address_pair_only(client, community, settings):
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        _fail(client, "bank_a_reporter", "198.51.100.7")
    assert _login(client, "bank_a_reporter", "198.51.100.7").status_code == 429
    # Someone else behind the same address (a shared proxy or office) can still sign in …
    assert _login(client, "hospital_reporter", "198.51.100.7").status_code == 302
    client.logout()
    # … and so can the account's owner from their own address.
    assert _login(client, "bank_a_reporter", "203.0.113.9").status_code == 302


def test_the_owner_hears_of_every_new_authenticator(transactional_db, community, run_worker, mailoutbox):
    user = community.bank_a_reporter
    user.language = "en"
    device = totp_device_start(user=user)
    code = str(TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits).token()).zfill(6)
    assert totp_device_confirm(user=user, device=device, token=code)
    run_worker()
    [message] = mailoutbox
    assert message.to == [user.email]
    assert message.subject == "An authenticator was added to your Renkei account"
    assert "someone knows your password" in message.body
