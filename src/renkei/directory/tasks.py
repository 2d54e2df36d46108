"""Background work for the directory."""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tasks import task

from renkei.directory.models import User


@task()
def send_welcome_email(user_id: int) -> None:
    """Tell a new user their account exists, in their language, through the configured SMTP server."""
    user = User.objects.filter(pk=user_id, is_active=True).exclude(email="").first()
    if user is None:
        return
    with translation.override(user.language or settings.LANGUAGE_CODE):
        context = {"user": user, "base_url": settings.RENKEI_BASE_URL, "password_link": ""}
        if not user.has_usable_password():
            # Accounts made by an administrator or an import start without a password.
            path = reverse(
                "password_reset_confirm",
                kwargs={
                    "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                    "token": default_token_generator.make_token(user),
                },
            )
            context["password_link"] = settings.RENKEI_BASE_URL + path
        subject = render_to_string("directory/email/welcome_subject.txt", context).strip()
        body = render_to_string("directory/email/welcome_body.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
