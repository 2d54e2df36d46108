from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from renkei.interop.services import MAX_BUNDLE_BYTES


class UploadFormat(models.TextChoices):
    STIX = "stix", _("STIX 2.1 bundle")
    MISP = "misp", _("MISP event (JSON)")


class BundleUploadForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"), choices=UploadFormat.choices, initial=UploadFormat.STIX, widget=forms.RadioSelect
    )
    bundle = forms.FileField(
        label=_("File"),
        help_text=_("A JSON file. Invalid objects are listed with the reason; valid ones are stored."),
    )

    def clean_bundle(self):
        bundle = self.cleaned_data["bundle"]
        if bundle.size > MAX_BUNDLE_BYTES:
            raise ValidationError(
                _("The file is larger than %(limit)s.") % {"limit": filesizeformat(MAX_BUNDLE_BYTES)},
                code="too_large",
            )
        return bundle
