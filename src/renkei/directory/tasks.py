"""Background work for the directory."""

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import translation
from django_tasks import task

from renkei.directory.models import User


@task()
def send_welcome_email(user_id: int) -> None:
    """Tell a new user their account exists, in their language, through the configured SMTP server."""
    user = User.objects.filter(pk=user_id, is_active=True).exclude(email="").first()
    if user is None:
        return
    with translation.override(user.language or settings.LANGUAGE_CODE):
        context = {"user": user, "base_url": settings.RENKEI_BASE_URL}
        subject = render_to_string("directory/email/welcome_subject.txt", context).strip()
        body = render_to_string("directory/email/welcome_body.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
