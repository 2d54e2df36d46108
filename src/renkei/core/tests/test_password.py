"""Setting a password from an e-mailed link: the first password of an account an administrator made,
and a forgotten one. The mail goes through the task worker to a real local SMTP server."""

import re

from django.urls import reverse

from renkei.audit.models import AuditAction, AuditRecord
from renkei.directory.choices import Role
from renkei.directory.models import User
from renkei.directory.services import user_create
from renkei.directory.tests.factories import OrganizationFactory

NEW_PASSWORD = "kaigan-senro-2026!"


def link_in(delivery) -> str:
    body = delivery.message.get_body().get_content()
    # Links are built from RENKEI_BASE_URL (set by the `inbox` fixture), never from the Host header.
    match = re.search(r"https://renkei\.example\.jp(/accounts/password/set/\S+)", body)
    assert match, body
    return match.group(1)


def set_password_through(client, path: str):
    page = client.get(path, follow=True)
    assert page.status_code == 200
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else path
    return client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True)


def test_a_new_account_gets_a_link_to_choose_its_first_password(inbox, run_worker, client):
    user_create(
        actor=None,
        username="aoki",
        organization=OrganizationFactory(),
        role=Role.REPORTER,
        email="aoki@operator.example.jp",
        language="en",
    )
    run_worker()
    [welcome] = inbox.wait_for(1)
    assert not User.objects.get(username="aoki").has_usable_password()

    done = set_password_through(client, link_in(welcome))

    assert done.status_code == 200
    user = User.objects.get(username="aoki")
    assert user.check_password(NEW_PASSWORD)
    assert AuditRecord.objects.filter(
        action=AuditAction.UPDATE,
        object_type="directory.user",
        object_id=str(user.pk),
        after__password__isnull=False,
    ).exists()


def test_a_forgotten_password_is_reset_and_the_link_works_once(inbox, run_worker, client):
    organization = OrganizationFactory()
    user = user_create(
        actor=None,
        username="ishii",
        organization=organization,
        role=Role.REPORTER,
        email="ishii@operator.example.jp",
        password="old-password-2026!",
        language="en",
    )
    run_worker()
    inbox.wait_for(1)

    response = client.post(reverse("password_reset"), {"email": "ISHII@operator.example.jp"})
    assert response.status_code == 302
    assert inbox.deliveries[1:] == [], "the request only queues the mail"
    run_worker()
    [_welcome, reset] = inbox.wait_for(2)
    assert reset.recipients == ["ishii@operator.example.jp"]
    assert reset.message["Subject"] == "Set your Renkei password"

    path = link_in(reset)
    set_password_through(client, path)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert AuditRecord.objects.filter(
        action=AuditAction.UPDATE,
        object_type="directory.user",
        object_id=str(user.pk),
        after__password__isnull=False,
    ).exists()

    reused = client.get(path, follow=True)
    assert reused.context["validlink"] is False
    assert "このリンクは無効です" in reused.content.decode()


def test_an_unknown_address_looks_the_same_and_sends_nothing(inbox, run_worker, client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.jp"}, follow=True)
    assert response.status_code == 200
    run_worker()
    assert inbox.deliveries == []
