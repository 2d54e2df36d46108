from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write
from renkei.core.tasks import send_email
from renkei.directory.choices import Language


class RenkeiForm(forms.Form):
    """Labels without a trailing colon: the layout puts each label on its own line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class LoginForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})
        self.fields["password"].widget.attrs["autocomplete"] = "current-password"


class TokenForm(RenkeiForm):
    """A six-digit code from an authenticator app."""

    token = forms.CharField(
        label=_("Six-digit code"),
        max_length=16,
        help_text=_("The code shown in your authenticator app. It changes every 30 seconds."),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autofocus": True,
                "inputmode": "numeric",
                "class": "input--code",
            }
        ),
    )

    def clean_token(self):
        token = "".join(self.cleaned_data["token"].split())
        if len(token) != 6 or not token.isdigit():
            raise forms.ValidationError(_("Enter the six digits shown in your authenticator app."))
        return token


class LanguageForm(RenkeiForm):
    language = forms.ChoiceField(label=_("Display language"), choices=Language.choices)


class PasswordLinkRequestForm(PasswordResetForm):
    """Asks for a link to set a new password. The e-mail is queued, never sent inside the request."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs["autocomplete"] = "email"

    def get_users(self, email):
        # Unlike Django's default, people whose account was created without a password (by an
        # administrator or an import) may use this to set their first one.
        return get_user_model().objects.filter(email__iexact=email, is_active=True).exclude(email="")

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        # The configured address, never the request's Host header, which a client chooses.
        context = context | {"base_url": settings.RENKEI_BASE_URL}
        # In the account's language, not the language of whoever filled in the form.
        with translation.override(context["user"].language or settings.LANGUAGE_CODE):
            subject = "".join(render_to_string(subject_template_name, context).splitlines())
            body = render_to_string(email_template_name, context)
        transaction.on_commit(lambda: send_email.enqueue(subject=subject, body=body, recipients=[to_email]))


class PasswordSetForm(SetPasswordForm):
    """Sets the password from an e-mailed link, and records that it happened."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    @transaction.atomic
    def save(self, commit=True):
        user = super().save(commit=commit)
        audit_write(
            actor=user, action=AuditAction.UPDATE, obj=user, after={"password": "set from e-mailed link"}
        )
        return user
