from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from renkei.directory.choices import OrganizationType
from renkei.directory.models import Organization, Sector
from renkei.situations.choices import DecisionKind, LogKind, RuleKind
from renkei.situations.models import ROSTER_LABELS, AlertLevel


class DeclareForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    level = forms.ModelChoiceField(label=_("Level"), queryset=AlertLevel.objects.all())
    nationwide = forms.BooleanField(label=_("Nationwide"), required=False, initial=True)
    sectors = forms.ModelMultipleChoiceField(
        label=_("Affected sectors"), queryset=Sector.objects.order_by("display_order"), required=False
    )
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}))


class DecisionForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Decision"),
        choices=[(kind, label) for kind, label in DecisionKind.choices if kind != DecisionKind.DECLARE],
    )
    level = forms.ModelChoiceField(
        label=_("New level (to raise or lower)"), queryset=AlertLevel.objects.all(), required=False
    )
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}))


class LogForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=LogKind.choices, initial=LogKind.NOTE)
    text = forms.CharField(label=_("Entry"), max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))


class SituationReportForm(forms.Form):
    report = forms.UUIDField(label=_("Report ID"), help_text=_("Shown on the report's page."))


class ParticipantForm(forms.Form):
    organization = forms.ModelChoiceField(
        label=_("Organization"), queryset=Organization.objects.filter(active=True).order_by("name_ja")
    )
    max_tlp = forms.ChoiceField(label=_("May see reports up to"), choices=ROSTER_LABELS)


class SpilloverForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(label=_("Body"), widget=forms.Textarea(attrs={"rows": 8}))
    sectors = forms.ModelMultipleChoiceField(label=_("Sectors to warn"), queryset=Sector.objects.all())


class FindingForm(forms.Form):
    text = forms.CharField(label=_("Finding"), max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


# A replay on the web answers within the request; longer periods go through the command line.
REPLAY_MAX_DAYS = 400


class ReplayForm(forms.Form):
    since = forms.DateField(
        label=_("Reports submitted since"), widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("until (empty: now)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until") or timezone.localdate()
        if since and since > until:
            raise forms.ValidationError(_("The start is after the end."), code="order")
        if since and (until - since).days > REPLAY_MAX_DAYS:
            raise forms.ValidationError(
                _("At most %(days)d days at a time here; use `renkei situations rules test` for more.")
                % {"days": REPLAY_MAX_DAYS},
                code="too_long",
            )
        return cleaned


class RuleForm(forms.Form):
    """A recognition rule; which thresholds count depends on its kind (the others are ignored)."""

    code = forms.SlugField(
        label=_("Code"), max_length=64, required=False, help_text=_("Cannot change later.")
    )
    name_ja = forms.CharField(label=_("Name (Japanese)"), max_length=200)
    name_en = forms.CharField(label=_("Name (English)"), max_length=200, required=False)
    kind = forms.ChoiceField(label=_("Kind"), choices=RuleKind.choices)
    level = forms.ModelChoiceField(label=_("Level proposed"), queryset=AlertLevel.objects.all())
    cause_code = forms.CharField(
        label=_("Cause code"),
        max_length=64,
        required=False,
        help_text=_("For reports with a cause: e.g. intentional (its subcategories count too)."),
    )
    min_reports = forms.IntegerField(label=_("At least this many reports"), required=False, min_value=1)
    min_sectors = forms.IntegerField(label=_("From at least this many sectors"), required=False, min_value=1)
    min_organizations = forms.IntegerField(
        label=_("From at least this many organizations"), required=False, min_value=2
    )
    min_users = forms.IntegerField(label=_("Affecting at least this many users"), required=False, min_value=1)
    min_dependents = forms.IntegerField(
        label=_("With at least this many dependent sectors"), required=False, min_value=1
    )
    window_hours = forms.IntegerField(label=_("Within hours"), required=False, min_value=1)


class LevelForm(forms.Form):
    code = forms.SlugField(
        label=_("Code"), max_length=32, required=False, help_text=_("Cannot change later.")
    )
    rank = forms.IntegerField(label=_("Rank"), min_value=0, help_text=_("Higher is more severe."))
    name_ja = forms.CharField(label=_("Name (Japanese)"), max_length=100)
    name_en = forms.CharField(label=_("Name (English)"), max_length=150, required=False)
    colour = forms.RegexField(
        label=_("Colour"),
        regex=r"^#[0-9a-fA-F]{6}$",
        initial="#888888",
        widget=forms.TextInput(attrs={"type": "color"}),
    )


class RosterEntryForm(forms.Form):
    level = forms.ModelChoiceField(label=_("From level"), queryset=AlertLevel.objects.all())
    organization_type = forms.ChoiceField(
        label=_("Organization type"), choices=[("", "---------"), *OrganizationType.choices], required=False
    )
    organization = forms.ModelChoiceField(
        label=_("or one organization"),
        queryset=Organization.objects.filter(active=True).order_by("name_ja"),
        required=False,
    )
    affected_sectors_only = forms.BooleanField(label=_("Only those of the affected sectors"), required=False)
    max_tlp = forms.ChoiceField(label=_("May see reports up to"), choices=ROSTER_LABELS)


class DependencyForm(forms.Form):
    dependent = forms.ModelChoiceField(label=_("Sector"), queryset=Sector.objects.order_by("display_order"))
    depended_on = forms.ModelChoiceField(
        label=_("depends on"), queryset=Sector.objects.order_by("display_order")
    )
    strength = forms.IntegerField(label=_("Strength (1–5)"), min_value=1, max_value=5)
    note = forms.CharField(label=_("Note"), max_length=300, required=False)
