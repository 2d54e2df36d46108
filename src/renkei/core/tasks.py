"""Background work shared by every app."""

from django.conf import settings
from django.core.mail import send_mail
from django_tasks import task


@task()
def send_email(*, subject: str, body: str, recipients: list[str]) -> None:
    """Send one already-rendered plain-text message through the configured SMTP server."""
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
