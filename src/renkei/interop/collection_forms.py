"""Forms for what an organization shares through collections: its TAXII feeds (a remote collection
polled into one of its own) and the collections it publishes. Both choose a TLP label and audience."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from renkei.core.forms import RenkeiForm
from renkei.directory.choices import OrganizationType
from renkei.directory.models import Organization, Sector
from renkei.interop.collection_sharing import sharing_of
from renkei.interop.feeds import FeedSettings, feed_settings
from renkei.interop.models import Collection, CollectionAudience
from renkei.interop.services import CollectionSettings
from renkei.sharing.choices import Tlp
from renkei.sharing.forms import OrganizationChoiceMixin, TlpChoicesMixin, TlpField


def saved_through_form(form, save):
    """Run the service with the form's settings (a feed's or a collection's); its refusals are shown
    on the form. None when the form or the service refused."""
    if not form.is_valid():
        return None
    try:
        return save(form.settings())
    except ValidationError as error:
        form.add_error(None, error)
        return None


class SharingForm(OrganizationChoiceMixin, TlpChoicesMixin, RenkeiForm):
    """The owning organization (on creation), and the label and audience of a collection's objects."""

    organization = forms.ModelChoiceField(
        label=_("Owner"), queryset=Organization.objects.none(), empty_label=None
    )
    tlp = TlpField(initial=Tlp.AMBER)
    audience = forms.ChoiceField(
        label=_("Who may read the objects"),
        choices=CollectionAudience.choices,
        initial=CollectionAudience.CHAIN,
        widget=forms.RadioSelect,
    )
    all_ci = forms.BooleanField(label=_("All critical infrastructure"), required=False)
    sectors = forms.ModelMultipleChoiceField(
        label=_("Sectors"),
        required=False,
        queryset=Sector.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    organization_types = forms.MultipleChoiceField(
        label=_("Organization types"),
        required=False,
        choices=[(t.value, t.label) for t in OrganizationType if t != OrganizationType.PUBLIC],
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, user, organizations=None, existing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sectors"].queryset = Sector.objects.restrict(user).filter(active=True)
        if existing:
            del self.fields["organization"]  # a collection keeps its owner
        else:
            self.offer_organizations(organizations)

    def clean(self):
        data = super().clean()
        named = data.get("audience") == CollectionAudience.NAMED
        if named and not (data.get("all_ci") or data.get("sectors") or data.get("organization_types")):
            raise ValidationError(
                _("Choose who may read the objects: everyone, sectors or organization types."),
                code="no_audience",
            )
        return data

    def settings(self):
        """What the service needs from the form (the subclass's settings dataclass)."""
        raise NotImplementedError

    def sharing(self) -> dict:
        data = self.cleaned_data
        return {
            "tlp": data["tlp"],
            "audience": data["audience"],
            "all_ci": data["all_ci"],
            "sectors": list(data["sectors"]),
            "organization_types": list(data["organization_types"]),
        }


class FeedForm(SharingForm):
    """A feed's settings. The password is never shown again: left blank on an edit, it is kept."""

    name = forms.CharField(label=_("Name"), max_length=200)
    url = forms.URLField(
        label=_("Collection address"),
        max_length=1000,
        assume_scheme="https",
        help_text=_("The TAXII 2.1 collection's address, ending in /collections/<id>/."),
    )
    username = forms.CharField(label=_("User name"), max_length=200, required=False)
    secret = forms.CharField(
        label=_("Password or API token"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Stored encrypted and never shown again."),
    )
    poll_minutes = forms.IntegerField(label=_("Poll every (minutes)"), min_value=1, initial=60)
    active = forms.BooleanField(label=_("Poll this feed"), required=False, initial=True)

    def __init__(self, *args, user, organizations=None, feed=None, **kwargs):
        if feed is not None:
            kwargs.setdefault("initial", vars(feed_settings(feed)))
        super().__init__(*args, user=user, organizations=organizations, existing=feed is not None, **kwargs)
        if feed is None:
            self.fields["organization"].label = _("Imports for")
            del self.fields["active"]  # a new feed is polled
        else:
            self.fields["secret"].help_text = _("Stored encrypted. Leave blank to keep the stored one.")

    def settings(self) -> FeedSettings:
        data = self.cleaned_data
        return FeedSettings(
            name=data["name"],
            url=data["url"],
            username=data["username"],
            secret=data["secret"],
            poll_minutes=data["poll_minutes"],
            active=data.get("active", True),
            **self.sharing(),
        )


class CollectionForm(SharingForm):
    """A collection an organization shares its own objects through (not its submissions, not a feed's)."""

    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, user, organizations=None, collection: Collection | None = None, **kwargs):
        if collection is not None:
            kwargs.setdefault(
                "initial",
                {"title": collection.title, "description": collection.description, **sharing_of(collection)},
            )
        super().__init__(
            *args, user=user, organizations=organizations, existing=collection is not None, **kwargs
        )

    def settings(self) -> CollectionSettings:
        data = self.cleaned_data
        return CollectionSettings(title=data["title"], description=data["description"], **self.sharing())
