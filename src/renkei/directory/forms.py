"""Forms for browsing and editing the directory. They validate input; services do the writing."""

from django import forms
from django.core.validators import validate_email
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from renkei.core.access import principal_for
from renkei.core.forms import RenkeiForm
from renkei.directory.choices import PARENT_TYPES, ContactKind, OrganizationType, Role, SizeClass
from renkei.directory.models import Organization, Sector, may_administer_directory
from renkei.directory.services import ContactInput


class OrganizationFilterForm(RenkeiForm):
    """The organization list's filters. Also valid with nothing filled in: then it lists everything."""

    q = forms.CharField(
        label=_("Search by name"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    type = forms.ChoiceField(
        label=_("Type"), required=False, choices=[("", _("All types")), *OrganizationType.choices]
    )
    sector = forms.ModelChoiceField(
        label=_("Sector"),
        required=False,
        queryset=Sector.objects.none(),
        to_field_name="code",
        empty_label=_("All sectors"),
    )
    size = forms.ChoiceField(
        label=_("Size"), required=False, choices=[("", _("All sizes")), *SizeClass.choices]
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sector"].queryset = Sector.objects.restrict(user).filter(active=True)

    def apply(self, queryset):
        """Narrow `queryset` by the filters that are valid; a bad value in one is ignored, not fatal."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("q"):
            queryset = queryset.filter(Q(name_ja__icontains=data["q"]) | Q(name_en__icontains=data["q"]))
        if data.get("type"):
            queryset = queryset.filter(type=data["type"])
        if data.get("sector"):
            queryset = queryset.filter(pk__in=data["sector"].organizations.values("pk"))
        if data.get("size"):
            queryset = queryset.filter(size=data["size"])
        return queryset

    @property
    def is_filtered(self) -> bool:
        return any(self.cleaned_data.get(name) for name in self.fields)


class PersonFilterForm(RenkeiForm):
    q = forms.CharField(
        label=_("Search by name or username"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )

    def apply(self, queryset):
        self.is_valid()
        text = self.cleaned_data.get("q")
        if text:
            queryset = queryset.filter(
                Q(username__icontains=text)
                | Q(display_name__icontains=text)
                | Q(first_name__icontains=text)
                | Q(last_name__icontains=text)
            )
        return queryset


class OrganizationForm(RenkeiForm):
    name_ja = forms.CharField(label=_("Name (Japanese)"), max_length=200)
    name_en = forms.CharField(label=_("Name (English)"), max_length=200, required=False)
    sectors = forms.ModelMultipleChoiceField(
        label=_("Sectors"),
        required=False,
        queryset=Sector.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    parent = forms.ModelChoiceField(
        label=_("Parent body"),
        required=False,
        queryset=Organization.objects.none(),
        empty_label=_("None"),
        help_text=_("The body this organization reports through, e.g. an operator's CEPTOAR."),
    )
    size = forms.ChoiceField(
        label=_("Size class"),
        required=False,
        choices=[("", _("Not applicable")), *SizeClass.choices],
        help_text=_("Only operators and vendors have a size class."),
    )
    active = forms.BooleanField(
        label=_("Active"),
        required=False,
        help_text=_("Inactive organizations stay in the records but no longer take part."),
    )

    def __init__(self, *args, organization: Organization, user, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "name_ja": organization.name_ja,
                "name_en": organization.name_en,
                "sectors": list(organization.sectors.restrict(user)),
                "parent": organization.parent,
                "size": organization.size,
                "active": organization.active,
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["sectors"].queryset = Sector.objects.restrict(user)
        self.fields["parent"].queryset = (
            Organization.objects.restrict(user)
            .filter(active=True, type__in=PARENT_TYPES.get(organization.type, ()))
            .exclude(pk=organization.pk)
        )
        if not may_administer_directory(principal_for(user)):
            # The reporting structure is the national centre's to change (see organization_update).
            for name in ("name_ja", "name_en", "sectors", "parent", "active"):
                self.fields[name].disabled = True


class ContactRouteForm(RenkeiForm):
    # A blank first choice, so an unused extra row submits nothing and is skipped.
    kind = forms.ChoiceField(label=_("Kind"), choices=[("", "—"), *ContactKind.choices])
    value = forms.CharField(label=_("Address or number"), max_length=254)
    label = forms.CharField(label=_("Note"), max_length=100, required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == ContactKind.EMAIL and cleaned.get("value"):
            try:
                validate_email(cleaned["value"])
            except forms.ValidationError:
                self.add_error("value", _("Enter a valid e-mail address."))
        return cleaned

    def as_contact(self) -> ContactInput:
        data = self.cleaned_data
        return ContactInput(
            kind=data["kind"], value=data["value"].strip(), label=data.get("label", "").strip()
        )


class BaseContactRouteFormSet(forms.BaseFormSet):
    def contacts(self) -> list[ContactInput]:
        """The routes to keep, in the order shown: filled-in rows not marked for removal."""
        # Blank extra rows have empty cleaned_data.
        return [
            form.as_contact()
            for form in self.forms
            if form.cleaned_data and not self._should_delete_form(form)
        ]


ContactRouteFormSet = forms.formset_factory(
    ContactRouteForm, formset=BaseContactRouteFormSet, extra=2, can_delete=True, max_num=20, validate_max=True
)


class MemberAddForm(RenkeiForm):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        help_text=_(
            "A person who is already a member of an organization you administer gets this role in "
            "addition. Otherwise a new account is created."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    display_name = forms.CharField(label=_("Display name"), max_length=150, required=False)
    email = forms.EmailField(
        label=_("E-mail address"),
        required=False,
        help_text=_("New accounts with an address receive a welcome e-mail."),
    )
