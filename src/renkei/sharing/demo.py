"""Sample information-sharing content for the demo community (`renkei demo`, `renkei up`).

Six reports from operators in four sectors, a question from a ministry and its answer, an
anonymized copy and three advisories, some of them acknowledged. Everything is written through the
audited services in services.py, acting as the demo's people, exactly as they would through the
pages; nothing touches the models directly. The demo community (directory/demo.py) must be loaded
first.

Loading again creates nothing twice: each item is found again by a natural key — a report by its
organization and first title, an advisory by its issuing body, the username of the person who
issued it and its title, a comment by its report and text, an anonymized copy by its source and
title, an acknowledgement by its advisory and organization. After `renkei demo --reset` the retired
organizations and people keep their content (reports and advisories are records), and the new ones
get a fresh set.

Detection times are relative to the moment of loading, spread over the last weeks, so that the
dashboard's monthly charts and its table of overdue reports have something to show; the services
stamp submissions with the moment of loading.
"""

import datetime as dt
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from renkei.directory.demo import DEMO_ORGANIZATIONS
from renkei.directory.models import Organization, Sector, User
from renkei.sharing.choices import (
    CommentKind,
    ObservableType,
    ReportKind,
    ReportStatus,
    ServiceState,
    Severity,
    Tlp,
    VersionStage,
)
from renkei.sharing.models import Acknowledgement, Advisory, AnonymizedReport, CauseCategory, Report
from renkei.sharing.services import (
    AdvisoryInput,
    AnonymizedInput,
    ObservableInput,
    ReportInput,
    advisory_acknowledge,
    advisory_issue,
    anonymized_copy_create,
    report_comment,
    report_submit,
    report_update,
)


@dataclass(frozen=True)
class SampleVersion:
    """A later version of a sample report: an update (続報) or the final report (最終報).

    Each version is a whole picture of the incident; what is not given here stays as it was.
    """

    stage: str
    narrative: str
    status: str = ReportStatus.INVESTIGATING
    cause: str = ""
    observables: tuple[tuple[str, str], ...] = ()
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SampleQuestion:
    """A ministry's question on a report (usernames of the demo) and the operator's answer."""

    asker: str
    question: str
    answerer: str
    answer: str


@dataclass(frozen=True)
class SampleReport:
    key: str  # how advisories and copies below refer to it
    organization: str  # demo organization key
    reporter: str  # demo username
    sector: str
    title: str
    kind: str
    tlp: str
    cause: str
    detected_days_ago: float
    narrative: str
    occurred_hours_before: float | None = None
    status: str = ReportStatus.OPEN
    observables: tuple[tuple[str, str], ...] = ()
    recipients: tuple[str, ...] = ()  # TLP:RED only
    details: dict = field(default_factory=dict)  # the other ReportInput fields
    versions: tuple[SampleVersion, ...] = ()
    questions: tuple[SampleQuestion, ...] = ()


@dataclass(frozen=True)
class SampleCopy:
    """An anonymized cross-sector copy, made by `actor` from a consenting report."""

    source: str
    actor: str
    title: str
    narrative: str
    keep_sector: bool = True
    observables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SampleAdvisory:
    organization: str  # the issuing body's demo key
    issuer: str  # demo username
    title: str
    body: str
    severity: str
    tlp: str
    all_ci: bool = False
    sectors: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()  # demo organization keys
    ack_required: bool = False
    ack_due_days: float | None = None
    source_reports: tuple[str, ...] = ()  # SampleReport keys
    acknowledged_by: tuple[str, ...] = ()  # demo usernames, one per organization


IP = ObservableType.IPV4
DOMAIN = ObservableType.DOMAIN
URL = ObservableType.URL
EMAIL = ObservableType.EMAIL
SHA256 = ObservableType.SHA256

# Oldest detection first: they are submitted in this order, so the newest is on top of the lists.
# Addresses are from the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) and
# domains under example.com / .test: none of them can point at anyone real.
REPORTS = (
    SampleReport(
        key="water-exposed-remote-monitoring",
        organization="water-op2",
        reporter="water-op2-reporter",
        sector="water",
        title="浄水場の遠隔監視装置がインターネットから接続可能な状態となっていた事案",
        kind=ReportKind.SIGN,
        tlp=Tlp.AMBER,
        cause="accidental.operation_error",
        detected_days_ago=47,
        occurred_hours_before=24 * 30,
        status=ReportStatus.INVESTIGATING,
        narrative=(
            "外部のセキュリティ研究者からの連絡を受けて調査したところ、第二浄水場の遠隔監視装置の管理画面が"
            "インターネットから接続可能な状態となっていたことが判明した。\n"
            "約1か月前の監視装置更新工事の際、保守用に一時的に開放したポートを閉じ忘れたことが原因とみられる。"
            "アクセスログには海外のアドレスからの接続試行（ログイン失敗）が複数記録されているが、"
            "ログインの成功や設定変更の痕跡は現時点で確認されていない。\n"
            "検知当日に当該ポートを閉塞済み。浄水処理・給水への影響はない。管理画面の認証情報を変更し、"
            "他の施設に同様の設定がないか点検を進めている。"
        ),
        observables=((IP, "203.0.113.15"), (IP, "203.0.113.142")),
        details={
            "area": "若葉市 第二浄水場",
            "affected_services": "浄水場遠隔監視装置（管理画面）",
            "service_state": ServiceState.NONE,
        },
    ),
    SampleReport(
        key="medical-ransomware",
        organization="medical-op1",
        reporter="medical-op1-reporter",
        sector="medical",
        title="ランサムウェア感染による電子カルテシステムの停止",
        kind=ReportKind.FAILURE,
        tlp=Tlp.AMBER,
        cause="intentional.malware",
        detected_days_ago=36,
        occurred_hours_before=6,
        status=ReportStatus.INVESTIGATING,
        narrative=(
            "早朝、電子カルテシステムのサーバー群でファイルが暗号化され、端末に脅迫文が表示されていることを"
            "夜間当直の職員が発見した。\n"
            "院内ネットワークを外部から遮断し、電子カルテを停止して紙カルテによる運用に切り替えた。"
            "救急外来の受け入れを一時制限し、予定手術の一部を延期している。\n"
            "侵入経路は調査中。外部の専門事業者に調査を依頼した。"
        ),
        observables=(
            (IP, "198.51.100.23"),
            (SHA256, "5f2b7c1e9a04d3b8c6e1f0a27d94b3c85e6f1a2b3c4d5e6f708192a3b4c5d6e7"),
        ),
        details={
            "impact_integrity": True,
            "impact_availability": True,
            "service_state": ServiceState.DEGRADED,
            "area": "本院（外来・病棟）",
            "affected_services": "電子カルテシステム、医事会計システム、検査部門システム",
        },
        versions=(
            SampleVersion(
                stage=VersionStage.UPDATE,
                narrative=(
                    "【続報】専門事業者の調査により、保守用 VPN 装置の既知の脆弱性を悪用した侵入であることが"
                    "判明した。侵入後、管理者アカウントを奪取されバックアップサーバーも一部暗号化されていた。\n"
                    "オフライン保管していたバックアップから電子カルテの復旧を進めており、外来診療は通常の"
                    "約7割まで回復した。身代金の要求には応じていない。患者情報の外部流出の有無は引き続き調査中。"
                ),
                observables=((DOMAIN, "files-sync.example.com"), (IP, "198.51.100.87")),
                details={"duration_minutes": 60 * 24 * 5, "users_affected": 12000},
            ),
        ),
    ),
    SampleReport(
        key="electricity-monitoring-outage",
        organization="electricity-op1",
        reporter="electricity-op1-reporter",
        sector="electricity",
        title="停電に伴う給電指令所監視制御システムの一時停止",
        kind=ReportKind.FAILURE,
        tlp=Tlp.AMBER_STRICT,
        cause="unknown",
        detected_days_ago=27,
        occurred_hours_before=0.25,
        status=ReportStatus.INVESTIGATING,
        narrative=(
            "落雷に伴う瞬時電圧低下の直後、東部給電指令所の監視制御システム（SCADA）のサーバー室で"
            "停電が発生し、系統監視画面が約95分間表示されない状態となった。\n"
            "この間、電力の供給は継続しており、需要家への停電は発生していない。現地の変電所要員を増員し、"
            "電話連絡による運用で対応した。停止の原因は調査中。"
        ),
        details={
            "impact_availability": True,
            "service_state": ServiceState.NONE,
            "duration_minutes": 95,
            "area": "東部給電指令所",
            "affected_services": "監視制御システム（SCADA）",
        },
        versions=(
            SampleVersion(
                stage=VersionStage.UPDATE,
                cause="accidental.equipment_failure",
                narrative=(
                    "【続報】サーバー室の無停電電源装置（UPS）のバッテリーが劣化しており、瞬時電圧低下の際に"
                    "給電を維持できなかったことが原因と判明した。サイバー攻撃によるものではない。\n"
                    "UPS のバッテリーを交換し、非常用発電機への切替試験を実施した。"
                ),
            ),
            SampleVersion(
                stage=VersionStage.FINAL,
                cause="accidental.equipment_failure",
                status=ReportStatus.RESOLVED,
                narrative=(
                    "【最終報】原因は UPS バッテリーの経年劣化による給電停止。バッテリーの交換を完了し、"
                    "全給電指令所の UPS について点検周期を年1回から半年に1回へ見直した。\n"
                    "監視制御システムのサーバーを二系統の UPS から給電する構成への変更を"
                    "来年度に予定している。"
                    "本件をもって最終報とする。"
                ),
            ),
        ),
    ),
    SampleReport(
        key="finance-credential-stuffing",
        organization="finance-op1",
        reporter="finance-op1-reporter",
        sector="finance",
        title="インターネットバンキングの利用者アカウントへの不正アクセス（リスト型攻撃）",
        kind=ReportKind.FAILURE,
        tlp=Tlp.AMBER,
        cause="intentional.intrusion",
        detected_days_ago=18,
        occurred_hours_before=10,
        status=ReportStatus.INVESTIGATING,
        narrative=(
            "個人向けインターネットバンキングに対し、他サービスから流出したとみられる ID・パスワードを用いた"
            "ログイン試行が深夜に集中して発生した（約4万件）。このうち38件のアカウントでログインに成功され、"
            "登録メールアドレスの変更が行われた。\n"
            "不正送金は、振込時の追加認証により全件未遂となっている。該当アカウントを凍結し、利用者へ"
            "個別に連絡した。攻撃元アドレスからの接続を遮断済み。"
        ),
        observables=(
            (IP, "198.51.100.17"),
            (IP, "198.51.100.45"),
            (IP, "203.0.113.0/25"),
        ),
        details={
            "impact_confidentiality": True,
            "service_state": ServiceState.NONE,
            "users_affected": 38,
            "affected_services": "個人向けインターネットバンキング",
        },
        questions=(
            SampleQuestion(
                asker="fsa-coordinator",
                question=(
                    "不正ログインされた38件について、追加認証を設定していなかった利用者は何件ありますか。"
                    "また、他の金融機関と共通する攻撃元の情報があれば共有してください。"
                ),
                answerer="finance-op1-reporter",
                answer=(
                    "38件すべてが追加認証（ワンタイムパスワード）未設定の利用者でした。攻撃元アドレスは"
                    "観測情報に記載のとおりで、銀行等セプター経由で会員行にも注意喚起を依頼する予定です。"
                ),
            ),
        ),
    ),
    SampleReport(
        key="finance-phishing-mail",
        organization="finance-op3",
        reporter="finance-op3-reporter",
        sector="finance",
        title="取引先を装ったフィッシングメールの職員宛て大量受信",
        kind=ReportKind.SIGN,
        tlp=Tlp.GREEN,
        cause="intentional.impersonation",
        detected_days_ago=9,
        occurred_hours_before=2,
        status=ReportStatus.RESOLVED,
        narrative=(
            "取引先の請求書通知を装ったメールが職員約120名宛てに届いた。メール内のリンク先は当金庫の"
            "グループウェアのログイン画面を模した偽サイトで、職員1名が ID とパスワードを入力したが、"
            "多要素認証により不正ログインには至らなかった。\n"
            "該当職員のパスワードを変更し、送信元ドメインと偽サイトへの通信をメールゲートウェイと"
            "プロキシで遮断した。全職員に注意喚起を行った。"
        ),
        observables=(
            (EMAIL, "billing@invoice-notice.example.com"),
            (DOMAIN, "invoice-notice.example.com"),
            (URL, "https://invoice-notice.example.com/groupware/login"),
            (IP, "192.0.2.44"),
        ),
        details={
            "share_with_ceptoar": True,
            "anonymized_copy_consent": True,
            "service_state": ServiceState.NONE,
            "affected_services": "職員用メール、グループウェア",
        },
    ),
    SampleReport(
        key="electricity-suspicious-control-traffic",
        organization="electricity-op2",
        reporter="electricity-op2-reporter",
        sector="electricity",
        title="制御系ネットワークから外部への不審な通信の検知",
        kind=ReportKind.SIGN,
        tlp=Tlp.RED,
        cause="intentional.intrusion",
        detected_days_ago=3,
        occurred_hours_before=30,
        status=ReportStatus.INVESTIGATING,
        narrative=(
            "変電所の制御系ネットワークに設置した監視センサーが、保守用端末から外部アドレスへの定期的な"
            "通信を検知した。通信は保守委託先の担当者アカウントで VPN 接続された時間帯に発生している。\n"
            "当該アカウントを停止し、保守用端末をネットワークから切り離して保全した。制御機器への"
            "不正な操作は現時点で確認されていない。保守委託先と連携して調査中であり、調査が進むまで"
            "共有範囲を指名した方に限定する。"
        ),
        observables=((IP, "203.0.113.200"), (DOMAIN, "telemetry-update.test")),
        recipients=("nco-coordinator", "nco-analyst", "meti-coordinator"),
        details={"service_state": ServiceState.NONE, "area": "北部変電所"},
    ),
)

COPIES = (
    SampleCopy(
        source="finance-phishing-mail",
        actor="nco-analyst",
        title="取引先の請求書通知を装うフィッシングメール（金融機関）",
        narrative=(
            "金融分野のある事業者で、取引先の請求書通知を装ったメールが多数の職員宛てに届いた。リンク先は"
            "社内グループウェアのログイン画面を模した偽サイトで、認証情報を入力した職員がいたが、"
            "多要素認証により不正ログインには至らなかった。\n"
            "同様のメールを受信した場合は、送信元ドメインと下記の観測情報を遮断し、職員への注意喚起と"
            "多要素認証の適用状況の確認を推奨する。"
        ),
        observables=(
            (EMAIL, "billing@invoice-notice.example.com"),
            (DOMAIN, "invoice-notice.example.com"),
            (URL, "https://invoice-notice.example.com/groupware/login"),
        ),
    ),
)

ADVISORIES = (
    SampleAdvisory(
        organization="nco",
        issuer="nco-coordinator",
        title="VPN装置の脆弱性を悪用したランサムウェア被害の拡大について（注意喚起）",
        body=(
            "重要インフラ事業者等 各位\n\n"
            "保守用の VPN 装置の既知の脆弱性を悪用して内部ネットワークに侵入し、ランサムウェアにより"
            "業務システムやバックアップを暗号化する事案が、複数の分野で報告されています。\n\n"
            "以下の対策の実施状況を確認してください。\n"
            "1. VPN 装置のファームウェアを最新版に更新すること\n"
            "2. 保守用アカウントに多要素認証を設定し、不要なアカウントを削除すること\n"
            "3. バックアップをネットワークから切り離して保管し、復旧手順を確認すること\n\n"
            "本注意喚起を受領したことを、期限までに受領確認ボタンでお知らせください。"
        ),
        severity=Severity.HIGH,
        tlp=Tlp.GREEN,
        all_ci=True,
        ack_required=True,
        ack_due_days=5,
        source_reports=("medical-ransomware",),
        acknowledged_by=(
            "finance-op1-officer",
            "electricity-op1-officer",
            "medical-op1-officer",
            "water-op1-officer",
            "railway-op1-officer",
            "gas-op2-officer",
        ),
    ),
    SampleAdvisory(
        organization="fsa",
        issuer="fsa-coordinator",
        title="インターネットバンキングにおける不正ログイン対策の徹底について",
        body=(
            "金融機関 各位\n\n"
            "他サービスから流出した ID・パスワードを用いたリスト型攻撃により、インターネットバンキングの"
            "利用者アカウントに不正ログインされる事案が確認されています。\n\n"
            "利用者への追加認証（ワンタイムパスワード等）の利用促進、短時間に大量のログイン試行を行う"
            "接続元の遮断、登録情報変更時の利用者への通知について、改めて確認をお願いします。"
        ),
        severity=Severity.MEDIUM,
        tlp=Tlp.AMBER,
        sectors=("finance",),
        source_reports=("finance-credential-stuffing",),
    ),
    SampleAdvisory(
        organization="ceptoar-finance-banks",
        issuer="ceptoar-finance-banks-officer",
        title="会員向け：請求書通知を装うフィッシングメールへの注意",
        body=(
            "会員各位\n\n"
            "取引先の請求書通知を装い、グループウェアのログイン画面を模した偽サイトへ誘導するメールが、"
            "会員の職員宛てに届いています。送信元ドメイン invoice-notice.example.com からのメールと"
            "同ドメインへの通信の遮断をご検討ください。\n\n"
            "類似のメールを受信した場合は、セプター事務局までご連絡ください。"
        ),
        severity=Severity.MEDIUM,
        tlp=Tlp.AMBER,
        organizations=("finance-op1", "finance-op3"),
        source_reports=("finance-phishing-mail",),
    ),
)


@dataclass
class SampleContentResult:
    reports_created: int = 0
    versions_added: int = 0
    comments_created: int = 0
    copies_created: int = 0
    advisories_created: int = 0
    acknowledgements_created: int = 0
    # Items left out: a demo account or organization they need is gone, or a service refused them.
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(
            (
                self.reports_created,
                self.versions_added,
                self.comments_created,
                self.copies_created,
                self.advisories_created,
                self.acknowledgements_created,
            )
        )


class _Missing(Exception):
    """A demo account or organization an item needs is deactivated or gone."""


class _Demo:
    """Lookups of the demo's organizations and people by their demo keys and usernames."""

    def __init__(self):
        names = {spec.key: spec.name_ja for spec in DEMO_ORGANIZATIONS}
        active = {
            org.name_ja: org for org in Organization.objects.filter(name_ja__in=names.values(), active=True)
        }
        self.organizations = {key: active[name] for key, name in names.items() if name in active}
        self.users: dict[str, User] = {}
        self.causes = {cause.code: cause for cause in CauseCategory.objects.all()}
        self.sectors = {sector.code: sector for sector in Sector.objects.all()}

    def organization(self, key: str) -> Organization:
        try:
            return self.organizations[key]
        except KeyError:
            raise _Missing(key) from None

    def user(self, username: str) -> User:
        if username not in self.users:
            user = User.objects.filter(username=username, is_active=True).first()
            if user is None:
                raise _Missing(username)
            self.users[username] = user
        return self.users[username]


@transaction.atomic
def sample_content_load() -> SampleContentResult:
    """Add the sample reports, copies, advisories and acknowledgements that are missing.

    An item whose demo account or organization has been deactivated or removed, or that a person
    has since changed so that a service refuses it (e.g. a report relabelled TLP:RED), is left out
    and named in `skipped`; the rest still loads.
    """
    if settings.PRODUCTION:
        raise ValidationError(
            _("The demo community cannot be loaded into a production installation (RENKEI_ENV=production)."),
            code="production",
        )
    result = SampleContentResult()
    demo = _Demo()
    now = timezone.now().replace(second=0, microsecond=0)
    reports: dict[str, Report] = {}
    for spec in REPORTS:
        with _skipping(spec.title, result):
            reports[spec.key] = _ensure_report(demo, spec, now, result)
    for spec in COPIES:
        if spec.source in reports:
            with _skipping(spec.title, result):
                _ensure_copy(demo, spec, reports[spec.source], result)
    for spec in ADVISORIES:
        with _skipping(spec.title, result):
            _ensure_advisory(demo, spec, reports, now, result)
    return result


@contextmanager
def _skipping(title: str, result: SampleContentResult):
    # Each service runs in a savepoint of its own, so a refusal undoes only that one write.
    try:
        yield
    except _Missing as missing:
        result.skipped.append(
            _("%(item)s: %(name)s is missing or deactivated") % {"item": title, "name": missing}
        )
    except ValidationError as error:
        result.skipped.append(f"{title}: {' '.join(error.messages)}")


def _observables(pairs: Sequence[tuple[str, str]]) -> list[ObservableInput]:
    return [ObservableInput(type=kind, value=value) for kind, value in pairs]


def _report_input(
    demo: _Demo,
    spec: SampleReport,
    detected: dt.datetime,
    version: SampleVersion | None = None,
    tlp: str = "",
) -> ReportInput:
    occurred = (
        detected - dt.timedelta(hours=spec.occurred_hours_before)
        if spec.occurred_hours_before is not None
        else None
    )
    details = dict(spec.details)
    observables = list(spec.observables)
    cause, narrative, status = spec.cause, spec.narrative, spec.status
    if version is not None:
        details |= version.details
        observables += version.observables
        cause = version.cause or cause
        narrative, status = version.narrative, version.status
    return ReportInput(
        title=spec.title,
        sector=demo.sectors[spec.sector],
        kind=spec.kind,
        detected_at=detected,
        occurred_at=occurred,
        cause=demo.causes[cause],
        tlp=tlp or spec.tlp,
        narrative=narrative,
        status=status,
        recipients=[demo.user(username) for username in spec.recipients] if version is None else (),
        observables=_observables(observables),
        **details,
    )


def _ensure_report(demo: _Demo, spec: SampleReport, now: dt.datetime, result: SampleContentResult) -> Report:
    organization = demo.organization(spec.organization)
    report = Report.objects.filter(
        organization=organization, versions__number=1, versions__title=spec.title
    ).first()
    if report is None:
        detected = now - dt.timedelta(days=spec.detected_days_ago)
        report = report_submit(
            reporter=demo.user(spec.reporter),
            organization=organization,
            data=_report_input(demo, spec, detected),
        )
        result.reports_created += 1
    # Versions the report already has are left alone, also ones a person added: only the sample
    # versions beyond them are added, while the report is open to updates.
    for number, version in enumerate(spec.versions, start=2):
        if report.version_count >= number or report.status == ReportStatus.CLOSED:
            continue
        data = _report_input(demo, spec, report.detected_at, version, tlp=report.tlp)
        report_update(author=demo.user(spec.reporter), report=report, data=data, stage=version.stage)
        report.refresh_from_db()
        result.versions_added += 1
    for question in spec.questions:
        _ensure_question(demo, report, question, result)
    return report


def _ensure_question(demo: _Demo, report: Report, spec: SampleQuestion, result: SampleContentResult) -> None:
    asked = report.comments.filter(kind=CommentKind.QUESTION, body=spec.question).first()
    if asked is None:
        asked = report_comment(
            author=demo.user(spec.asker), report=report, body=spec.question, kind=CommentKind.QUESTION
        )
        result.comments_created += 1
    if not report.comments.filter(kind=CommentKind.ANSWER, parent=asked, body=spec.answer).exists():
        report_comment(
            author=demo.user(spec.answerer),
            report=report,
            body=spec.answer,
            kind=CommentKind.ANSWER,
            parent=asked,
        )
        result.comments_created += 1


def _ensure_copy(demo: _Demo, spec: SampleCopy, source: Report, result: SampleContentResult) -> None:
    if AnonymizedReport.objects.filter(source=source, title=spec.title).exists():
        return
    anonymized_copy_create(
        actor=demo.user(spec.actor),
        source=source,
        data=AnonymizedInput(
            title=spec.title,
            narrative=spec.narrative,
            keep_sector=spec.keep_sector,
            tlp=Tlp.GREEN,
            all_ci=True,
            observables=_observables(spec.observables),
        ),
    )
    result.copies_created += 1


def _ensure_advisory(
    demo: _Demo,
    spec: SampleAdvisory,
    reports: dict[str, Report],
    now: dt.datetime,
    result: SampleContentResult,
) -> None:
    organization = demo.organization(spec.organization)
    # By username: after `--reset` the earlier issuer is retired under another name, and the new
    # account issues a fresh copy for the new organizations.
    advisory = Advisory.objects.filter(
        issuer=organization, issued_by__username=spec.issuer, title=spec.title
    ).first()
    if advisory is None:
        advisory = advisory_issue(
            issuer=demo.user(spec.issuer),
            organization=organization,
            data=AdvisoryInput(
                title=spec.title,
                body=spec.body,
                severity=spec.severity,
                tlp=spec.tlp,
                all_ci=spec.all_ci,
                sectors=[demo.sectors[code] for code in spec.sectors],
                organizations=[demo.organization(key) for key in spec.organizations],
                ack_required=spec.ack_required,
                ack_due=now + dt.timedelta(days=spec.ack_due_days) if spec.ack_due_days else None,
                source_reports=[reports[key] for key in spec.source_reports if key in reports],
            ),
        )
        result.advisories_created += 1
    for username in spec.acknowledged_by:
        with _skipping(spec.title, result):
            user = demo.user(username)
            membership = user.memberships.filter(organization__active=True).order_by("pk").first()
            if membership is None:
                raise _Missing(username)
            if Acknowledgement.objects.filter(
                advisory=advisory, organization=membership.organization
            ).exists():
                continue
            advisory_acknowledge(user=user, advisory=advisory, organization=membership.organization)
            result.acknowledgements_created += 1
