"""Forms for the information-sharing pages. They turn input into the services' dataclasses; the
services decide and write. Choices offered are already narrowed to what the user may pick."""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.functional import cached_property, lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from renkei.core.forms import RenkeiForm
from renkei.directory.choices import OrganizationType
from renkei.directory.models import Organization, Sector
from renkei.sharing import selectors
from renkei.sharing.choices import (
    TLP_ORDER,
    ObservableType,
    ReportKind,
    ReportStatus,
    ServiceState,
    Severity,
    Tlp,
    VersionStage,
)
from renkei.sharing.models import CauseCategory, Report
from renkei.sharing.observables import normalize_observable
from renkei.sharing.search import search_reports
from renkei.sharing.services import (
    AdvisoryInput,
    AnonymizedInput,
    AttachmentInput,
    ObservableInput,
    ReportInput,
)

# What each label means, in plain words, next to the label everywhere a label is chosen.
TLP_EXPLANATIONS = {
    Tlp.CLEAR: _("No limit: may be published."),
    Tlp.GREEN: _("The critical-infrastructure community; not on public channels."),
    Tlp.AMBER: _(
        "The receiving organizations and, where needed, their clients (a ministry's or CEPTOAR's operators)."
    ),
    Tlp.AMBER_STRICT: _("The receiving organizations only; no one beyond them."),
    Tlp.RED: _("Named people only; not even their colleagues."),
}
DATETIME_INPUT = "%Y-%m-%dT%H:%M"


class LocalDateTimeInput(forms.DateTimeInput):
    """The browser's date-and-time picker; values are read and shown in Japan Standard Time."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format=DATETIME_INPUT)


def local_datetime_field(label, **kwargs) -> forms.DateTimeField:
    kwargs.setdefault("help_text", _("Japan Standard Time (JST)."))
    return forms.DateTimeField(
        label=label, input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M"], widget=LocalDateTimeInput, **kwargs
    )


def cause_choices() -> list:
    """The active cause taxonomy as grouped choices: each top-level cause heads its own group and
    may itself be chosen while the detail is not yet known."""
    causes = list(CauseCategory.objects.filter(active=True).select_related("parent"))
    children: dict[int, list[CauseCategory]] = {}
    for cause in causes:
        if cause.parent_id:
            children.setdefault(cause.parent_id, []).append(cause)
    choices: list = [("", _("Choose a cause"))]
    for cause in causes:
        if cause.parent_id:
            continue
        if cause.pk in children:
            detail_unknown = _("%(cause)s (detail not yet known)") % {"cause": cause}
            options = [(cause.code, detail_unknown)] + [(c.code, str(c)) for c in children[cause.pk]]
            choices.append((str(cause), options))
        else:
            choices.append((cause.code, str(cause)))
    return choices


class CauseField(forms.ChoiceField):
    """A cause chosen by code from the grouped taxonomy; cleans to the CauseCategory."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Cause"))
        super().__init__(choices=cause_choices, **kwargs)

    def clean(self, value):
        code = super().clean(value)
        if not code:
            return None
        return CauseCategory.objects.get(code=code, active=True)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


def _attachments_help_text() -> str:
    return _("Any number of files, each up to %(limit)d MB. They are offered only as downloads.") % {
        "limit": settings.RENKEI_ATTACHMENT_MAX_BYTES // (1024 * 1024)
    }


class AttachmentsField(forms.FileField):
    """Any number of files, each within the size limit. Files are only ever offered as downloads."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput)
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Attachments"))
        # Lazy, so that it is said in the language of the page that shows it.
        kwargs.setdefault("help_text", lazy(_attachments_help_text, str)())
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        limit = settings.RENKEI_ATTACHMENT_MAX_BYTES
        attachments, errors = [], []
        for upload in files:
            upload = super().clean(upload, initial)
            if upload.size > limit:
                errors.append(
                    ValidationError(
                        _("%(name)s is larger than the limit of %(limit)d MB."),
                        params={"name": upload.name, "limit": limit // (1024 * 1024)},
                        code="attachment_size",
                    )
                )
                continue
            attachments.append(
                AttachmentInput(
                    filename=upload.name,
                    content_type=upload.content_type or "application/octet-stream",
                    content=upload.read(),
                )
            )
        if errors:
            raise ValidationError(errors)
        return attachments


# --- Observables, one row each -------------------------------------------------------------------

OBSERVABLE_DESCRIPTIONS = {
    ObservableType.IPV4: _("IPv4 address"),
    ObservableType.IPV6: _("IPv6 address"),
    ObservableType.DOMAIN: _("Domain name"),
    ObservableType.URL: _("URL"),
    ObservableType.EMAIL: _("E-mail address"),
    ObservableType.MAC: _("MAC address"),
    ObservableType.ASN: _("Autonomous system number"),
    ObservableType.MD5: _("MD5 file hash"),
    ObservableType.SHA1: _("SHA-1 file hash"),
    ObservableType.SHA256: _("SHA-256 file hash"),
}
# Without JavaScript, a new report offers this many empty rows (an update: this many more).
OBSERVABLE_EMPTY_ROWS = 3
OBSERVABLE_MAX_ROWS = 100


def observable_type_choices() -> list[tuple[str, str]]:
    """Each STIX name with what it means, e.g. “IPv4 address (ipv4-addr)”; the value is the name."""
    return [("", _("Choose a type"))] + [
        (kind.value, f"{OBSERVABLE_DESCRIPTIONS[kind]} ({kind.value})") for kind in ObservableType
    ]


class ObservableRowForm(RenkeiForm):
    """One observable: its type and value. A row left empty is skipped, so it may also be cleared."""

    type = forms.ChoiceField(label=_("Type"), required=False, choices=observable_type_choices)
    value = forms.CharField(
        label=_("Value"),
        required=False,
        max_length=2048,
        widget=forms.TextInput(attrs={"class": "input--mono", "spellcheck": "false", "autocomplete": "off"}),
    )

    def clean(self):
        data = super().clean()
        kind, value = data.get("type"), (data.get("value") or "").strip()
        if self.errors or (not kind and not value):
            return data
        if not kind:
            self.add_error("type", _("Choose the type of this observable."))
        elif not value:
            self.add_error("value", _("Enter the value of this observable."))
        else:
            try:
                data["observable"] = ObservableInput(kind, normalize_observable(kind, value))
            except ValidationError as error:
                self.add_error("value", error)
        return data


class BaseObservableRowFormSet(forms.BaseFormSet):
    default_error_messages = {
        "too_many_forms": _("Enter at most %(num)d observables; attach longer lists as a file."),
    }

    def observables(self) -> list[ObservableInput]:
        """The valid rows' observables, in the order entered."""
        return [form.cleaned_data["observable"] for form in self.forms if "observable" in form.cleaned_data]

    def invalid_rows(self) -> list[int]:
        """Row numbers (from 1, as the page shows them) that have a message."""
        return [number for number, errors in enumerate(self.errors, start=1) if errors]


ObservableRowFormSet = forms.formset_factory(
    ObservableRowForm,
    formset=BaseObservableRowFormSet,
    extra=OBSERVABLE_EMPTY_ROWS,
    max_num=OBSERVABLE_MAX_ROWS,
    validate_max=True,
)


class ObservableRowsMixin:
    """A form whose observables are rows of their own (`observable_rows`), posted with the rest of
    it; `observables` fills the first rows. Cleaned, the valid rows are `cleaned_data["observables"]`."""

    def __init__(self, *args, observables=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.observable_rows = ObservableRowFormSet(
            self.data if self.is_bound else None,
            prefix="observables",
            initial=[{"type": o.type, "value": o.value} for o in observables],
        )

    def clean(self):
        data = super().clean()
        rows = self.observable_rows
        if rows.is_valid():
            data["observables"] = rows.observables()
            return data
        for error in rows.non_form_errors():
            self.add_error(None, error)
        if invalid := rows.invalid_rows():
            self.add_error(
                None,
                ngettext(
                    "The observable in row %(rows)s needs attention; see the message there.",
                    "The observables in rows %(rows)s need attention; see the messages there.",
                    len(invalid),
                )
                % {"rows": ", ".join(map(str, invalid))},
            )
        return data

    def entered_observables(self) -> list[ObservableInput]:
        """The rows as entered, valid or not, without the empty ones: to fill the form again when a
        picker's button brings the page back."""
        entered = [
            ObservableInput(row["type"].value() or "", (row["value"].value() or "").strip())
            for row in self.observable_rows.forms
        ]
        return [row for row in entered if row.type or row.value]


# --- Audience pickers: organizations and people found by search ----------------------------------

# Matches shown per search; with more, the page asks for more of the name.
PICKER_LIMIT = 20
PICKER_BUTTONS = ("search", "add", "remove")


@dataclass(frozen=True)
class PickerItem:
    """One organization or person as a picker shows it: as a search result or as a chosen chip."""

    pk: int
    label: str
    detail: str


def _terms(query: str) -> list[str]:
    # str.split() also splits at the full-width space of a Japanese keyboard.
    return query.split()[:5]


def organization_items(organizations) -> list[PickerItem]:
    return [PickerItem(o.pk, o.name, o.get_type_display()) for o in organizations]


def person_items(people) -> list[PickerItem]:
    return [PickerItem(p.pk, str(p), p.username) for p in people]


def search_organizations(organizations, query: str, *, exclude=()) -> list[PickerItem]:
    """Those of `organizations` whose Japanese or English name holds every word of `query`.
    One more than PICKER_LIMIT comes back when there are more, so the page can say so."""
    terms = _terms(query)
    if not terms:
        return []
    organizations = organizations.exclude(pk__in=exclude)
    for term in terms:
        organizations = organizations.filter(Q(name_ja__icontains=term) | Q(name_en__icontains=term))
    return organization_items(organizations.order_by("type", "name_ja")[: PICKER_LIMIT + 1])


def search_people(people, query: str, *, exclude=()) -> list[PickerItem]:
    """Those of `people` whose username, display name or name holds every word of `query`."""
    terms = _terms(query)
    if not terms:
        return []
    people = people.exclude(pk__in=exclude)
    for term in terms:
        people = people.filter(
            Q(username__icontains=term)
            | Q(display_name__icontains=term)
            | Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
        )
    return person_items(people.order_by("username")[: PICKER_LIMIT + 1])


@dataclass(frozen=True)
class PickerKind:
    """What a picker chooses: how it searches, how it shows a chosen one, what it says of bad ids."""

    search: Callable[..., list[PickerItem]]
    items: Callable[..., list[PickerItem]]
    error_messages: dict


ORGANIZATIONS = PickerKind(
    search_organizations,
    organization_items,
    {
        "invalid_choice": _("Organization %(value)s is not one you can choose."),
        "invalid_pk_value": _("“%(pk)s” is not an organization id."),
    },
)
PEOPLE = PickerKind(
    search_people,
    person_items,
    {
        "invalid_choice": _("Person %(value)s is not one you can choose."),
        "invalid_pk_value": _("“%(pk)s” is not a person's id."),
    },
)


def picker_ids(values) -> list[int]:
    """The well-formed ids among posted `values`, in order, each once."""
    return list(dict.fromkeys(int(v) for v in values or () if str(v).isdigit()))


class PickerField(forms.ModelMultipleChoiceField):
    """Ids chosen in a picker, posted as one hidden input each; only ids from `queryset` pass."""

    widget = forms.MultipleHiddenInput

    def __init__(self, *, kind: PickerKind, **kwargs):
        self.kind = kind
        kwargs.setdefault("required", False)
        kwargs.setdefault("queryset", Organization.objects.none())
        kwargs["error_messages"] = kind.error_messages | kwargs.get("error_messages", {})
        super().__init__(**kwargs)


class PickerFormMixin:
    """A form with PickerFields. Each picker searches exactly what its field accepts, as you type
    through its URL (htmx), or without JavaScript through its own buttons (search, add, remove),
    which submit the whole form back to the page: the page returns with the matches and chips and
    nothing done. Enter in a text field presses a hidden first button, `_refresh`, which does the
    same (see the templates), so that it never submits a half-chosen form.

    A form keeps in `self.arguments` what it was built with, to build itself again after a button.
    """

    picker_url_name = ""
    arguments: dict
    # Set when the page came back from a picker's button with files chosen, which a browser sends
    # once only: the page asks for them again.
    files_dropped = False

    def init_pickers(self, *, queries=None, focus: str = "") -> None:
        # What each picker was last asked, when the page comes back from a picker's button, and the
        # picker whose button it was (the page returns with the focus there).
        self.queries = queries or {}
        self.focus = focus

    def picker_names(self) -> list[str]:
        return [name for name, field in self.fields.items() if isinstance(field, PickerField)]

    def picker_scope(self, name: str):
        """What the picker offers: what its field accepts, unless a form narrows it further."""
        return self.fields[name].queryset

    def picker_search(self, name: str, query: str, exclude=()) -> list[PickerItem]:
        return self.fields[name].kind.search(self.picker_scope(name), query, exclude=exclude)

    def picker_url(self, name: str) -> str:
        return reverse(self.picker_url_name, kwargs={"name": name})

    def picker_include(self, name: str) -> str:
        """Other fields (CSS selectors) the picker's search sends along, when its matches depend on them."""
        return ""

    def picker_notice(self, name: str) -> str:
        """What the picker says instead of matches, when nothing can be chosen in it just now."""
        return ""

    def _pressed_picker(self) -> str:
        """The picker whose button posted the form, if one did."""
        return next(
            (
                name
                for name in self.picker_names()
                for verb in PICKER_BUTTONS
                if f"{self.add_prefix(name)}_{verb}" in self.data
            ),
            "",
        )

    def picker_pressed(self) -> bool:
        """Whether the form was posted by a picker's button (or by Enter) rather than its own."""
        return "_refresh" in self.data or bool(self._pressed_picker())

    def picked(self):
        """This form again, unbound (so no messages yet), holding what was entered with the pressed
        button's change to the chosen organizations or people. Files cannot be carried over."""
        values = {
            name: field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
            for name, field in self.fields.items()
            if not isinstance(field, forms.FileField)
        }
        queries = {}
        for name in self.picker_names():
            key = self.add_prefix(name)
            removed = self.data.get(f"{key}_remove")
            kept = [value for value in values[name] if value != removed]
            values[name] = picker_ids([*kept, self.data.get(f"{key}_add", "")])
            queries[name] = self.data.get(f"{key}_q", "").strip()[:200]
        form = type(self)(
            **self.carried_arguments(), initial=values, queries=queries, focus=self._pressed_picker()
        )
        form.files_dropped = bool(self.files)
        return form

    def carried_arguments(self) -> dict:
        """What the form is built with again after a picker's button."""
        return self.arguments

    def chosen(self, name: str) -> list[PickerItem]:
        """The picker's chosen organizations or people that its field accepts, in the order chosen."""
        field = self.fields[name]
        ids = picker_ids(self[name].value())
        found = {item.pk: item for item in field.kind.items(field.queryset.filter(pk__in=ids))}
        return [found[pk] for pk in ids if pk in found]

    @cached_property
    def pickers(self) -> dict[str, dict]:
        """What the page shows for each picker: chips, the last search and its results."""
        pickers = {}
        for name in self.picker_names():
            query = self.queries.get(name, "")
            exclude = picker_ids(self[name].value())
            pickers[name] = {
                "field": self[name],
                "chosen": self.chosen(name),
                "query": query,
                "results": self.picker_search(name, query, exclude) if query else [],
                "limit": PICKER_LIMIT,
                "focus": self.focus == name,
                "url": self.picker_url(name),
                "include": self.picker_include(name),
                "notice": self.picker_notice(name),
            }
        return pickers


class OrganizationChoiceMixin:
    """An `organization` field (acting for which organization) that stays out of sight when the
    user has only one to choose from, and then defaults to it."""

    def offer_organizations(self, organizations) -> None:
        self.fields["organization"].queryset = organizations
        self.only_organization = organizations.get() if organizations.count() == 1 else None
        if self.only_organization:
            self.fields["organization"].widget = forms.HiddenInput()
            self.fields["organization"].required = False

    def clean_organization(self):
        return self.cleaned_data["organization"] or self.only_organization


class TlpField(forms.ChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("TLP label"))
        super().__init__(choices=[(t.value, t.label) for t in TLP_ORDER], widget=forms.RadioSelect, **kwargs)


class TlpChoicesMixin:
    """Lets templates show each TLP radio button with its plain-language meaning."""

    def tlp_options(self):
        return [(radio, TLP_EXPLANATIONS[Tlp(radio.data["value"])]) for radio in self["tlp"]]


# --- Reports ------------------------------------------------------------------------------------


class ReportFilterForm(RenkeiForm):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    sector = forms.ModelChoiceField(
        label=_("Sector"),
        required=False,
        queryset=Sector.objects.none(),
        to_field_name="code",
        empty_label=_("All sectors"),
    )
    cause = forms.ChoiceField(label=_("Cause"), required=False)
    tlp = forms.ChoiceField(
        label=_("TLP label"),
        required=False,
        choices=[("", _("All labels")), *[(t.value, t.label) for t in TLP_ORDER]],
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *ReportStatus.choices]
    )
    since = forms.DateField(
        label=_("Detected from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("Detected until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sector"].queryset = Sector.objects.restrict(user).filter(active=True)
        choices = cause_choices()
        choices[0] = ("", _("All causes"))
        self.fields["cause"].choices = choices

    def apply(self, queryset):
        """Narrow `queryset` by the valid filters; a bad value in one is ignored, not fatal."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("q"):
            queryset = search_reports(queryset, data["q"])
        if data.get("sector"):
            queryset = queryset.filter(sector=data["sector"])
        if data.get("cause"):
            # A top-level code also finds its subcategories.
            queryset = queryset.filter(
                Q(cause__code=data["cause"]) | Q(cause__code__startswith=data["cause"] + ".")
            )
        if data.get("tlp"):
            queryset = queryset.filter(tlp=data["tlp"])
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        if data.get("since"):
            queryset = queryset.filter(detected_at__date__gte=data["since"])
        if data.get("until"):
            queryset = queryset.filter(detected_at__date__lte=data["until"])
        return queryset

    @property
    def is_filtered(self) -> bool:
        return any(self.cleaned_data.get(name) for name in self.fields)


class ReportContentForm(TlpChoicesMixin, ObservableRowsMixin, RenkeiForm):
    """What every version of a report carries: the initial report and each update."""

    title = forms.CharField(label=_("Title"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=ReportKind.choices, widget=forms.RadioSelect)
    occurred_at = local_datetime_field(_("Occurred at"), required=False)
    detected_at = local_datetime_field(_("Detected at"))
    cause = CauseField(
        help_text=_(
            "Choose the top-level cause, or “unknown”, while the detail is not yet known; "
            "you can refine it in an update."
        )
    )
    impact_confidentiality = forms.BooleanField(label=_("Confidentiality affected (leak)"), required=False)
    impact_integrity = forms.BooleanField(
        label=_("Integrity affected (destruction, alteration)"), required=False
    )
    impact_availability = forms.BooleanField(label=_("Availability affected"), required=False)
    service_state = forms.ChoiceField(
        label=_("Service state"), choices=ServiceState.choices, initial=ServiceState.NONE
    )
    users_affected = forms.IntegerField(label=_("Users affected"), required=False, min_value=0)
    duration_minutes = forms.IntegerField(label=_("Duration (minutes)"), required=False, min_value=0)
    area = forms.CharField(label=_("Area affected"), max_length=200, required=False)
    affected_services = forms.CharField(
        label=_("Affected services and systems"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    narrative = forms.CharField(
        label=_("Narrative"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("What happened, in Japanese or English. Shown as plain text."),
    )
    attachments = AttachmentsField()

    def content(self) -> dict:
        data = self.cleaned_data
        names = [
            "title",
            "kind",
            "occurred_at",
            "detected_at",
            "cause",
            "impact_confidentiality",
            "impact_integrity",
            "impact_availability",
            "service_state",
            "users_affected",
            "duration_minutes",
            "area",
            "affected_services",
            "narrative",
            "attachments",
        ]
        # A form may drop a field (an update cannot change the kind); what it has, it returns.
        return {name: data[name] for name in names if name in self.fields} | {
            "observables": data["observables"]
        }


class ReportForm(PickerFormMixin, OrganizationChoiceMixin, ReportContentForm):
    """A new report: the content, plus who receives it."""

    field_order = ["organization", "title", "sector", "kind"]
    picker_url_name = "sharing:report_picker"

    organization = forms.ModelChoiceField(
        label=_("Reporting organization"), queryset=Organization.objects.none(), empty_label=None
    )
    sector = forms.ModelChoiceField(label=_("Sector"), queryset=Sector.objects.none(), empty_label=None)
    tlp = TlpField(initial=Tlp.AMBER)
    share_with_ceptoar = forms.BooleanField(
        label=_("Also send this report to our CEPTOAR"),
        required=False,
        help_text=_("The sector ministry and the national centre always receive it."),
    )
    anonymized_copy_consent = forms.BooleanField(
        label=_("We agree that an anonymized copy may be shared with other sectors"),
        required=False,
        help_text=_("The copy hides your organization, and its text is redacted before it is shared."),
    )
    recipients = PickerField(
        kind=PEOPLE,
        label=_("Named recipients (TLP:RED only)"),
        help_text=_(
            "Find each person by name or username and add them. With nobody added, the duty "
            "coordinators of the sector ministry and the national centre are named."
        ),
    )

    def __init__(self, *args, organizations, user, queries=None, focus="", **kwargs):
        super().__init__(*args, **kwargs)
        self.arguments = {"organizations": organizations, "user": user}
        self.offer_organizations(organizations)
        if not organizations.filter(parent__type=OrganizationType.CEPTOAR).exists():
            # Nobody to share with: an operator outside any CEPTOAR is not offered the choice.
            del self.fields["share_with_ceptoar"]
        self.fields["sector"].queryset = Sector.objects.filter(
            active=True, organizations__in=organizations
        ).distinct()
        self.fields["recipients"].queryset = selectors.addressable_people(user)
        self.init_pickers(queries=queries, focus=focus)

    def carried_arguments(self) -> dict:
        return self.arguments | {"observables": self.entered_observables()}

    def clean(self):
        data = super().clean()
        if data.get("recipients") and data.get("tlp") != Tlp.RED:
            self.add_error("recipients", _("Named recipients are only for TLP:RED reports."))
        return data

    def report_input(self) -> ReportInput:
        data = self.cleaned_data
        return ReportInput(
            **self.content(),
            sector=data["sector"],
            tlp=data["tlp"],
            share_with_ceptoar=data.get("share_with_ceptoar", False),
            anonymized_copy_consent=data["anonymized_copy_consent"],
            recipients=list(data["recipients"]),
        )


class ReportUpdateForm(ReportContentForm):
    """An update or the final report: the whole current state again, changed where it changed."""

    field_order = ["stage", "status"]

    stage = forms.ChoiceField(
        label=_("This is"),
        choices=[
            (VersionStage.UPDATE, VersionStage.UPDATE.label),
            (VersionStage.FINAL, VersionStage.FINAL.label),
        ],
        widget=forms.RadioSelect,
        initial=VersionStage.UPDATE,
    )
    status = forms.ChoiceField(label=_("Status"), choices=ReportStatus.choices)

    def __init__(self, *args, report: Report, **kwargs):
        self.report = report
        version = report.versions.order_by("-number").first()
        kwargs.setdefault(
            "initial",
            {
                "status": report.status,
                "title": version.title,
                "kind": report.kind,
                "occurred_at": version.occurred_at,
                "detected_at": version.detected_at,
                "cause": version.cause.code,
                "impact_confidentiality": version.impact_confidentiality,
                "impact_integrity": version.impact_integrity,
                "impact_availability": version.impact_availability,
                "service_state": version.service_state,
                "users_affected": version.users_affected,
                "duration_minutes": version.duration_minutes,
                "area": version.area,
                "affected_services": version.affected_services,
                "narrative": version.narrative,
            },
        )
        kwargs.setdefault("observables", version.observables.order_by("pk"))
        super().__init__(*args, **kwargs)
        # The kind is fixed by the initial report.
        del self.fields["kind"]

    def report_input(self) -> ReportInput:
        content = self.content() | {"kind": self.report.kind}
        return ReportInput(
            **content,
            sector=self.report.sector,
            tlp=self.report.tlp,
            status=self.cleaned_data["status"],
            ransom_paid=self.report.ransom_paid,
        )


class CommentForm(RenkeiForm):
    prefix = "comment"

    body = forms.CharField(label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}), max_length=10000)


class QuestionForm(RenkeiForm):
    prefix = "question"

    body = forms.CharField(
        label=_("Question to the reporter"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=10000,
        help_text=_("The reporting organization is notified and can answer here."),
    )


class AnswerForm(RenkeiForm):
    body = forms.CharField(label=_("Answer"), widget=forms.Textarea(attrs={"rows": 3}), max_length=10000)


class ForwardForm(PickerFormMixin, RenkeiForm):
    """More organizations or people for a report's audience, within what its label allows."""

    prefix = "forward"
    picker_url_name = "sharing:forward_picker"

    organizations = PickerField(
        kind=ORGANIZATIONS,
        label=_("Organizations"),
        help_text=_("Find each organization by its Japanese or English name and add it."),
    )
    people = PickerField(
        kind=PEOPLE,
        label=_("People"),
        help_text=_("Find each person by name or username and add them."),
    )

    def __init__(self, *args, report: Report, user, queries=None, focus="", **kwargs):
        super().__init__(*args, **kwargs)
        self.arguments = {"report": report, "user": user}
        self.report = report
        if report.tlp == Tlp.RED:
            # TLP:RED reaches named people only: there are no organizations to add.
            del self.fields["organizations"]
            self.fields["people"].label = _("Named people")
        else:
            self.fields["organizations"].queryset = selectors.forward_organizations(user, report)
        self.fields["people"].queryset = selectors.forward_people(user, report)
        self.init_pickers(queries=queries, focus=focus)

    def picker_url(self, name: str) -> str:
        return reverse(self.picker_url_name, kwargs={"pk": self.report.pk, "name": name})

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("organizations") and not data.get("people"):
            if "organizations" in self.fields:
                raise ValidationError(_("Choose at least one organization or person."), code="empty")
            raise ValidationError(_("Choose at least one person."), code="empty")
        return data


class LinkForm(RenkeiForm):
    prefix = "link"

    other = forms.ModelChoiceField(
        label=_("Report to link"),
        queryset=Report.objects.none(),
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "input--mono"}),
        help_text=_("The report's ID, shown at the top of its page."),
        error_messages={"invalid_choice": _("No report with this ID is visible to you.")},
    )

    def __init__(self, *args, reports, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["other"].queryset = reports


class ReclassifyForm(RenkeiForm):
    prefix = "reclassify"

    cause = CauseField()
    note = forms.CharField(
        label=_("Reason"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )


class RelabelForm(TlpChoicesMixin, RenkeiForm):
    prefix = "relabel"

    tlp = TlpField()
    source_consent = forms.BooleanField(
        label=_("The reporting organization has agreed to this label"),
        required=False,
        help_text=_("Needed when the national centre lowers the label of someone else's report."),
    )


# --- Advisories ---------------------------------------------------------------------------------

# Bodies that may issue advisories, and the roles within them that may.
ISSUER_TYPES = (OrganizationType.NATIONAL_CENTER, OrganizationType.SECTOR_MINISTRY, OrganizationType.CEPTOAR)


class AdvisoryForm(
    PickerFormMixin, OrganizationChoiceMixin, TlpChoicesMixin, ObservableRowsMixin, RenkeiForm
):
    picker_url_name = "sharing:advisory_picker"

    organization = forms.ModelChoiceField(
        label=_("Issuing organization"), queryset=Organization.objects.none(), empty_label=None
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(label=_("Body"), widget=forms.Textarea(attrs={"rows": 10}))
    severity = forms.ChoiceField(label=_("Severity"), choices=Severity.choices, initial=Severity.MEDIUM)
    tlp = TlpField(initial=Tlp.AMBER)
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
    organizations = PickerField(
        kind=ORGANIZATIONS,
        label=_("Organizations"),
        help_text=_("Find each organization by its Japanese or English name and add it."),
    )
    people = PickerField(
        kind=PEOPLE,
        label=_("Named people"),
        help_text=_("Find each person by name or username and add them."),
    )
    attachments = AttachmentsField()
    ack_required = forms.BooleanField(label=_("Recipients must acknowledge"), required=False)
    ack_due = local_datetime_field(_("Acknowledge by"), required=False)
    # Chosen by starting from a report's page; carried through the form unseen, listed beside it.
    source_reports = forms.ModelMultipleChoiceField(
        label=_("Stems from reports"),
        required=False,
        queryset=Report.objects.none(),
        widget=forms.MultipleHiddenInput,
    )

    def __init__(self, *args, issuers, user, queries=None, focus="", **kwargs):
        super().__init__(*args, **kwargs)
        self.arguments = {"issuers": issuers, "user": user}
        self.user = user
        self.offer_organizations(issuers)
        self.fields["source_reports"].queryset = Report.objects.restrict(user)
        self.fields["sectors"].queryset = Sector.objects.restrict(user).filter(active=True)
        # The audience the issuing organization may address; the label's ceiling is left to the
        # service, whose message names what the label excludes (the pickers only offer what fits).
        chosen = self["organization"].value()
        self.issuing = list(issuers.filter(pk=chosen) if str(chosen).isdigit() else ()) or list(issuers)
        self.fields["organizations"].queryset = selectors.advisory_organizations(user, issuers=self.issuing)
        self.fields["people"].queryset = selectors.advisory_people(user, issuers=self.issuing)
        self.init_pickers(queries=queries, focus=focus)

    @property
    def chosen_tlp(self) -> str | None:
        """The TLP label chosen so far, if a known one."""
        value = self["tlp"].value()
        return value if value in Tlp.values else None

    def carried_arguments(self) -> dict:
        return self.arguments | {"observables": self.entered_observables()}

    def picker_scope(self, name: str):
        narrowed = selectors.advisory_organizations if name == "organizations" else selectors.advisory_people
        return narrowed(self.user, issuers=self.issuing, tlp=self.chosen_tlp)

    def picker_include(self, name: str) -> str:
        # The matches depend on the issuing organization and the label chosen.
        return f"#{self['organization'].auto_id}, [name={self['tlp'].html_name}]:checked"

    def picker_notice(self, name: str) -> str:
        if name == "organizations" and self.chosen_tlp == Tlp.RED:
            return _("TLP:RED goes to named people only: add people instead.")
        return ""

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if not any(
            data.get(name) for name in ("all_ci", "sectors", "organization_types", "organizations", "people")
        ):
            raise ValidationError(_("Choose who receives the advisory."), code="no_audience")
        if data.get("ack_due") and not data.get("ack_required"):
            self.add_error("ack_due", _("A due time only applies when acknowledgement is required."))
        return data

    def advisory_input(self) -> AdvisoryInput:
        data = self.cleaned_data
        return AdvisoryInput(
            title=data["title"],
            body=data["body"],
            severity=data["severity"],
            tlp=data["tlp"],
            all_ci=data["all_ci"],
            sectors=list(data["sectors"]),
            organization_types=list(data["organization_types"]),
            organizations=list(data["organizations"]),
            people=list(data["people"]),
            ack_required=data["ack_required"],
            ack_due=data["ack_due"],
            source_reports=list(data["source_reports"]),
            observables=data["observables"],
            attachments=data["attachments"],
        )


class AcknowledgeForm(OrganizationChoiceMixin, RenkeiForm):
    prefix = "ack"

    organization = forms.ModelChoiceField(
        label=_("On behalf of"), queryset=Organization.objects.none(), empty_label=None
    )

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        self.offer_organizations(organizations)


# --- Anonymized copies ------------------------------------------------------------------------


class AnonymizedCopyForm(TlpChoicesMixin, RenkeiForm):
    title = forms.CharField(label=_("Title of the copy"), max_length=200)
    narrative = forms.CharField(
        label=_("Redacted narrative"),
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text=_("Remove names, places, system names and anything else that could identify the reporter."),
    )
    keep_sector = forms.BooleanField(
        label=_("Keep the sector"),
        required=False,
        help_text=_("Untick to generalize it away when the sector alone could identify the reporter."),
    )
    observables = forms.MultipleChoiceField(
        label=_("Observables to keep"), required=False, widget=forms.CheckboxSelectMultiple
    )
    tlp = TlpField(initial=Tlp.GREEN)
    all_ci = forms.BooleanField(label=_("All critical infrastructure"), required=False, initial=True)
    sectors = forms.ModelMultipleChoiceField(
        label=_("Sectors"),
        required=False,
        queryset=Sector.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, source: Report, observables, user, **kwargs):
        kwargs.setdefault(
            "initial", {"title": source.title, "narrative": source.narrative, "keep_sector": True}
        )
        super().__init__(*args, **kwargs)
        self.fields["observables"].choices = [
            (f"{o.type} {o.value}", f"{o.type}: {o.value}") for o in observables
        ]
        self.fields["sectors"].queryset = Sector.objects.restrict(user).filter(active=True)

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("all_ci") and not data.get("sectors"):
            raise ValidationError(_("Choose who receives the copy."), code="no_audience")
        return data

    def anonymized_input(self) -> AnonymizedInput:
        data = self.cleaned_data
        return AnonymizedInput(
            title=data["title"],
            narrative=data["narrative"],
            keep_sector=data["keep_sector"],
            tlp=data["tlp"],
            all_ci=data["all_ci"],
            sectors=list(data["sectors"]),
            observables=[tuple(choice.split(" ", 1)) for choice in data["observables"]],
        )
