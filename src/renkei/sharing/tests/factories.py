"""Building blocks for sharing tests: inputs with sensible defaults, and objects made through the
services (so every test object carries the audience and audit trail the real ones would)."""

import datetime as dt

from django.utils import timezone

from renkei.core.services import token_create
from renkei.directory.models import Organization, User
from renkei.sharing import services
from renkei.sharing.choices import ReportKind, Severity, Tlp
from renkei.sharing.models import Advisory, AnonymizedReport, CauseCategory, Report
from renkei.sharing.services import AdvisoryInput, AnonymizedInput, ObservableInput, ReportInput

# One observable of every type, including a quote that patterns must escape.
EVERY_OBSERVABLE_TYPE = [
    ("ipv4-addr", "203.0.113.7"),
    ("ipv6-addr", "2001:db8::1"),
    ("domain-name", "evil.example.com"),
    ("url", "https://evil.example.com/login?next=it's"),
    ("email-addr", "phish@evil.example.com"),
    ("mac-addr", "00:1a:2b:3c:4d:5e"),
    ("autonomous-system", "64496"),
    ("file:hashes.MD5", "d41d8cd98f00b204e9800998ecf8427e"),
    ("file:hashes.SHA-1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("file:hashes.SHA-256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
]


def bearer(user: User) -> dict:
    """API headers with a fresh token of `user`."""
    _token, secret = token_create(actor=user, user=user)
    return {"Authorization": f"Bearer {secret}"}


def _first_organization(user: User) -> Organization:
    return Organization.objects.filter(memberships__user=user).order_by("pk").first()


def cause(code: str = "intentional.intrusion") -> CauseCategory:
    """A cause category of the reference taxonomy (load `reference_data` first)."""
    return CauseCategory.objects.get(code=code)


def report_input(organization: Organization, **overrides) -> ReportInput:
    """A valid ReportInput for `organization`: its first sector, detected an hour ago, AMBER.

    `cause` may be given as a code; `observables` as (type, value) pairs or ObservableInputs.
    """
    detected = timezone.now() - dt.timedelta(hours=1)
    fields = {
        "title": "不正アクセスの疑い",
        "sector": organization.sectors.order_by("code").first(),
        "kind": ReportKind.FAILURE,
        "detected_at": detected,
        "occurred_at": detected - dt.timedelta(hours=2),
        "cause": "intentional.intrusion",
        "tlp": Tlp.AMBER,
        "narrative": "インターネットバンキングのサーバーに不正アクセスの痕跡を確認した。",
    } | overrides
    if isinstance(fields["cause"], str):
        fields["cause"] = cause(fields["cause"])
    fields["observables"] = [
        o if isinstance(o, ObservableInput) else ObservableInput(*o) for o in fields.get("observables", ())
    ]
    return ReportInput(**fields)


def report_for(reporter: User, organization: Organization | None = None, **overrides) -> Report:
    """A report submitted by `reporter` for `organization` (default: the reporter's first one)."""
    organization = organization or _first_organization(reporter)
    return services.report_submit(
        reporter=reporter, organization=organization, data=report_input(organization, **overrides)
    )


def advisory_input(**overrides) -> AdvisoryInput:
    """A valid AdvisoryInput; give the audience (sectors, organizations, people, all_ci …) yourself."""
    fields = {
        "title": "ランサムウェア攻撃に関する注意喚起",
        "body": "VPN 機器の脆弱性を悪用した侵入が複数分野で確認されています。",
        "severity": Severity.HIGH,
        "tlp": Tlp.AMBER,
    } | overrides
    return AdvisoryInput(**fields)


def advisory_for(issuer: User, organization: Organization | None = None, **overrides) -> Advisory:
    """An advisory issued by `issuer` on behalf of `organization` (default: the issuer's first one)."""
    organization = organization or _first_organization(issuer)
    return services.advisory_issue(issuer=issuer, organization=organization, data=advisory_input(**overrides))


def anonymized_input(**overrides) -> AnonymizedInput:
    """A valid AnonymizedInput: GREEN to all CI, sector kept, no observables."""
    fields = {
        "title": "金融機関への不正アクセス事案",
        "narrative": "ある事業者のサーバーに不正アクセスの痕跡が確認された。",
        "keep_sector": True,
        "tlp": Tlp.GREEN,
    } | overrides
    return AnonymizedInput(**fields)


def anonymized_copy_for(actor: User, source: Report, **overrides) -> AnonymizedReport:
    """An anonymized copy of `source` created by `actor` (the source must have consented)."""
    return services.anonymized_copy_create(actor=actor, source=source, data=anonymized_input(**overrides))
