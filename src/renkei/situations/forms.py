from django import forms
from django.utils.translation import gettext_lazy as _

from renkei.directory.models import Organization, Sector
from renkei.situations.choices import DecisionKind, LogKind
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


class ReplayForm(forms.Form):
    since = forms.DateField(
        label=_("Reports submitted since"), widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("until (empty: now)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
