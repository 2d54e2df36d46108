from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

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
