from django import forms
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from renkei.interop.services import MAX_BUNDLE_BYTES


class BundleUploadForm(forms.Form):
    bundle = forms.FileField(
        label=_("STIX 2.1 bundle"),
        help_text=_(
            "A JSON file holding one STIX 2.1 bundle. Invalid objects are listed; valid ones are stored."
        ),
    )

    def clean_bundle(self):
        bundle = self.cleaned_data["bundle"]
        if bundle.size > MAX_BUNDLE_BYTES:
            raise ValidationError(
                _("The file is larger than %(limit)s.") % {"limit": filesizeformat(MAX_BUNDLE_BYTES)},
                code="too_large",
            )
        return bundle
