"""Background tasks end to end: a service enqueues, `renkei worker` runs the task, SMTP receives it.

These tests commit for real (transactional_db): the task is queued by the service's on-commit hook,
and the worker, like a real one, closes and reopens its database connection between tasks.
"""

from django_tasks_db.models import DBTaskResult

from renkei.directory.choices import Role
from renkei.directory.services import user_create
from renkei.directory.tests.factories import OrganizationFactory

from .smtp import free_port

ENGLISH_SUBJECT = "Your Renkei account"


def create_user(username: str, *, email: str, language: str = ""):
    return user_create(
        actor=None,
        username=username,
        organization=OrganizationFactory(),
        role=Role.REPORTER,
        email=email,
        language=language,
    )


def test_welcome_email_in_english_reaches_the_smtp_server(inbox, run_worker):
    create_user("suzuki", email="suzuki@operator.example.jp", language="en")
    queued = DBTaskResult.objects.get()
    assert queued.task_path == "renkei.directory.tasks.send_welcome_email"
    assert queued.status == "READY"
    assert inbox.deliveries == [], "nothing is sent before the worker runs"

    run_worker()

    queued.refresh_from_db()
    assert queued.status == "SUCCESSFUL", queued.traceback
    [delivery] = inbox.wait_for(1)
    assert delivery.recipients == ["suzuki@operator.example.jp"]
    assert delivery.message["To"] == "suzuki@operator.example.jp"
    assert delivery.message["From"] == "renkei@renkei.example.jp"
    assert delivery.message["Subject"] == ENGLISH_SUBJECT
    body = delivery.message.get_body().get_content()
    assert "Username: suzuki" in body
    assert "https://renkei.example.jp/accounts/login/" in body


def test_welcome_email_defaults_to_japanese(inbox, run_worker):
    create_user("tanaka", email="tanaka@operator.example.jp")

    run_worker()

    [delivery] = inbox.wait_for(1)
    assert delivery.recipients == ["tanaka@operator.example.jp"]
    subject = delivery.message["Subject"]
    assert subject != ENGLISH_SUBJECT
    assert any("\u3040" <= char <= "\u30ff" or "\u4e00" <= char <= "\u9fff" for char in subject), subject
    body = delivery.message.get_body().get_content()
    assert "tanaka" in body
    assert "https://renkei.example.jp/accounts/login/" in body


def test_every_queued_welcome_is_sent_once(inbox, run_worker):
    for number in range(3):
        create_user(f"operator{number}", email=f"operator{number}@example.jp", language="en")

    run_worker()
    run_worker()

    deliveries = inbox.wait_for(3)
    assert sorted(address for d in deliveries for address in d.recipients) == [
        "operator0@example.jp",
        "operator1@example.jp",
        "operator2@example.jp",
    ]
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}


def test_a_user_without_email_queues_no_welcome(transactional_db):
    create_user("yamada", email="")
    assert not DBTaskResult.objects.exists()


def test_an_unreachable_smtp_server_marks_the_task_failed(transactional_db, settings, run_worker):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_USE_TLS = False
    create_user("kato", email="kato@operator.example.jp")

    run_worker()

    queued = DBTaskResult.objects.get()
    assert queued.status == "FAILED"
    assert "ConnectionRefusedError" in queued.traceback
