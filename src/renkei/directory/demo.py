"""The fictitious demo community that `renkei demo` loads on top of the real reference structure.

Every company, hospital, town, vendor and partner here is invented; the ministries, agencies and
CEPTOARs are the reference data. Every organization gets a user for every role, named
`<organization key>-<role>` (e.g. `finance-op1-reporter`), all with the password `DEMO_PASSWORD`.
Staff of the national centre and the ministries, who must use two-factor sign-in, get a TOTP
device with the shared `DEMO_TOTP_KEY`. Phone numbers are 03-0xxx-xxxx: Japanese subscriber
numbers never start with 0, so none of them can ring a real line. Documented in docs/cli.md.
"""

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.core.referencedata import all_reference_data_load
from renkei.directory.choices import (
    TWO_FACTOR_ORGANIZATION_TYPES,
    ContactKind,
    Language,
    OrganizationType,
    Role,
)
from renkei.directory.choices import SizeClass as Size
from renkei.directory.models import MINIMUM_CONTACT_ROUTES, Membership, Organization, User
from renkei.directory.services import (
    ContactInput,
    contact_routes_replace,
    membership_add,
    organization_create,
    organization_remove,
    sectors_by_code,
    two_factor_device_add,
    user_create,
    user_remove,
)

DEMO_PASSWORD = "renkei-demo-2026"  # noqa: S105  (published on purpose: it is the demo's sign-in)
DEMO_TOTP_KEY = "3132333435363738393031323334353637383930"
DEMO_TOTP_KEY_BASE32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
DEMO_DEVICE_NAME = "Renkei demo"


@dataclass(frozen=True)
class DemoOrganization:
    """An organization of the demo. `reference` ones come from the reference data; the demo only
    adds their people (and contact routes if they have none)."""

    key: str
    name_ja: str
    name_en: str = ""
    type: str = OrganizationType.OPERATOR
    domain: str = ""
    sectors: tuple[str, ...] = ()
    parent: str = ""  # Japanese name of the parent body, always a reference CEPTOAR
    size: str = ""
    language: str = ""
    reference: bool = False

    @property
    def mail_domain(self) -> str:
        # Host names may not contain "_", which sector codes such as info_comm do.
        return self.domain or f"{self.key.replace('_', '-')}.example.jp"


def _reference(key: str, name_ja: str) -> DemoOrganization:
    return DemoOrganization(key=key, name_ja=name_ja, reference=True)


REFERENCE_BODIES = (
    _reference("nco", "国家サイバー統括室"),
    _reference("fsa", "金融庁"),
    _reference("mic", "総務省"),
    _reference("mhlw", "厚生労働省"),
    _reference("meti", "経済産業省"),
    _reference("mlit", "国土交通省"),
    _reference("moe", "環境省"),
    _reference("mofa", "外務省"),
    _reference("digital", "デジタル庁"),
    _reference("npa", "警察庁"),
    _reference("mod", "防衛省"),
    _reference("jpcert", "JPCERTコーディネーションセンター"),
    _reference("ipa", "情報処理推進機構"),
    _reference("nict", "情報通信研究機構"),
    _reference("bousai", "内閣府（防災担当）"),
    _reference("council", "セプターカウンシル"),
    _reference("ceptoar-info_comm-telecom", "T-CEPTOAR"),
    _reference("ceptoar-info_comm-broadcast", "放送セプター"),
    _reference("ceptoar-info_comm-cabletv", "ケーブルテレビセプター"),
    _reference("ceptoar-finance-banks", "銀行等セプター"),
    _reference("ceptoar-finance-securities", "証券セプター"),
    _reference("ceptoar-finance-life", "生命保険セプター"),
    _reference("ceptoar-finance-nonlife", "損害保険セプター"),
    _reference("ceptoar-aviation", "航空セプター"),
    _reference("ceptoar-airport", "空港セプター"),
    _reference("ceptoar-railway", "鉄道セプター"),
    _reference("ceptoar-electricity", "電力セプター"),
    _reference("ceptoar-gas", "ガスセプター"),
    _reference("ceptoar-government", "自治体セプター"),
    _reference("ceptoar-medical", "医療セプター"),
    _reference("ceptoar-water", "水道セプター"),
    _reference("ceptoar-logistics", "物流セプター"),
    _reference("ceptoar-chemical", "化学セプター"),
    _reference("ceptoar-credit", "クレジットセプター"),
    _reference("ceptoar-petroleum", "石油セプター"),
    _reference("ceptoar-port", "港湾セプター"),
)


def _operator(key, name_ja, name_en, domain, sector, parent, size) -> DemoOrganization:
    return DemoOrganization(
        key=key, name_ja=name_ja, name_en=name_en, domain=domain, sectors=(sector,), parent=parent, size=size
    )


# Three operators per sector: op1 large, op2 large or SME, op3 SME. All names are invented.
# fmt: off
OPERATORS = (
    _operator("info_comm-op1", "東和テレコム株式会社", "Towa Telecom Corporation",
              "towa-telecom.example.jp", "info_comm", "T-CEPTOAR", Size.LARGE),
    _operator("info_comm-op2", "関東中央放送株式会社", "Kanto Chuo Broadcasting Co., Ltd.",
              "kanto-chuo-tv.example.jp", "info_comm", "放送セプター", Size.LARGE),
    _operator("info_comm-op3", "みなみ野ケーブルテレビ株式会社", "Minamino Cable Television Co., Ltd.",
              "minamino-catv.example.jp", "info_comm", "ケーブルテレビセプター", Size.SME),
    _operator("finance-op1", "株式会社さきがけ銀行", "Sakigake Bank, Ltd.",
              "sakigake-bank.example.jp", "finance", "銀行等セプター", Size.LARGE),
    _operator("finance-op2", "あけぼの証券株式会社", "Akebono Securities Co., Ltd.",
              "akebono-sec.example.jp", "finance", "証券セプター", Size.LARGE),
    _operator("finance-op3", "ひまわり信用金庫", "Himawari Shinkin Bank",
              "himawari-shinkin.example.jp", "finance", "銀行等セプター", Size.SME),
    _operator("aviation-op1", "大空航空株式会社", "Ozora Airlines Co., Ltd.",
              "ozora-air.example.jp", "aviation", "航空セプター", Size.LARGE),
    _operator("aviation-op2", "瀬戸内スカイライン株式会社", "Setouchi Skyline Co., Ltd.",
              "setouchi-sky.example.jp", "aviation", "航空セプター", Size.SME),
    _operator("aviation-op3", "南西アイランド航空株式会社", "Nansei Island Air Co., Ltd.",
              "nansei-island-air.example.jp", "aviation", "航空セプター", Size.SME),
    _operator("airport-op1", "新湾岸国際空港株式会社", "Shin-Wangan International Airport Co., Ltd.",
              "shin-wangan-airport.example.jp", "airport", "空港セプター", Size.LARGE),
    _operator("airport-op2", "北陸みらい空港ビル株式会社", "Hokuriku Mirai Airport Building Co., Ltd.",
              "hokuriku-mirai-airport.example.jp", "airport", "空港セプター", Size.SME),
    _operator("airport-op3", "島しょ空港管理株式会社", "Island Airports Management Co., Ltd.",
              "island-airports.example.jp", "airport", "空港セプター", Size.SME),
    _operator("railway-op1", "武蔵野高速鉄道株式会社", "Musashino Rapid Railway Co., Ltd.",
              "musashino-rapid.example.jp", "railway", "鉄道セプター", Size.LARGE),
    _operator("railway-op2", "湘南みなと電鉄株式会社", "Shonan Minato Electric Railway Co., Ltd.",
              "shonan-minato.example.jp", "railway", "鉄道セプター", Size.LARGE),
    _operator("railway-op3", "山あい鉄道株式会社", "Yamaai Railway Co., Ltd.",
              "yamaai-rail.example.jp", "railway", "鉄道セプター", Size.SME),
    _operator("electricity-op1", "中部みらい電力株式会社", "Chubu Mirai Electric Power Co., Inc.",
              "chubu-mirai-power.example.jp", "electricity", "電力セプター", Size.LARGE),
    _operator("electricity-op2", "北斗送配電株式会社", "Hokuto Power Grid Co., Inc.",
              "hokuto-grid.example.jp", "electricity", "電力セプター", Size.LARGE),
    _operator("electricity-op3", "里山グリーンエナジー株式会社", "Satoyama Green Energy Co., Ltd.",
              "satoyama-energy.example.jp", "electricity", "電力セプター", Size.SME),
    _operator("gas-op1", "東京湾岸ガス株式会社", "Tokyo Wangan Gas Co., Ltd.",
              "wangan-gas.example.jp", "gas", "ガスセプター", Size.LARGE),
    _operator("gas-op2", "播州ガス株式会社", "Banshu Gas Co., Ltd.",
              "banshu-gas.example.jp", "gas", "ガスセプター", Size.SME),
    _operator("gas-op3", "美濃高原ガス株式会社", "Mino Kogen Gas Co., Ltd.",
              "mino-kogen-gas.example.jp", "gas", "ガスセプター", Size.SME),
    _operator("government-op1", "青空県", "Aozora Prefecture",
              "pref-aozora.example.jp", "government", "自治体セプター", Size.LARGE),
    _operator("government-op2", "若葉市", "Wakaba City",
              "city-wakaba.example.jp", "government", "自治体セプター", Size.LARGE),
    _operator("government-op3", "緑ヶ丘町", "Midorigaoka Town",
              "town-midorigaoka.example.jp", "government", "自治体セプター", Size.SME),
    _operator("medical-op1", "翠風会総合病院", "Suifukai General Hospital",
              "suifukai-hp.example.jp", "medical", "医療セプター", Size.LARGE),
    _operator("medical-op2", "港南医療センター", "Konan Medical Center",
              "konan-mc.example.jp", "medical", "医療セプター", Size.SME),
    _operator("medical-op3", "ひだまりクリニック", "Hidamari Clinic",
              "hidamari-clinic.example.jp", "medical", "医療セプター", Size.SME),
    _operator("water-op1", "東湾広域水道企業団", "Towan Regional Water Supply Authority",
              "towan-water.example.jp", "water", "水道セプター", Size.LARGE),
    _operator("water-op2", "若葉市水道局", "Wakaba City Waterworks Bureau",
              "water.city-wakaba.example.jp", "water", "水道セプター", Size.LARGE),
    _operator("water-op3", "清流町上下水道課", "Seiryu Town Water and Sewerage Division",
              "town-seiryu.example.jp", "water", "水道セプター", Size.SME),
    _operator("logistics-op1", "日本橋ロジスティクス株式会社", "Nihonbashi Logistics Co., Ltd.",
              "nihonbashi-logi.example.jp", "logistics", "物流セプター", Size.LARGE),
    _operator("logistics-op2", "東海陸運株式会社", "Tokai Rikuun Co., Ltd.",
              "tokai-rikuun.example.jp", "logistics", "物流セプター", Size.LARGE),
    _operator("logistics-op3", "北国運輸株式会社", "Kitaguni Transport Co., Ltd.",
              "kitaguni-unyu.example.jp", "logistics", "物流セプター", Size.SME),
    _operator("chemical-op1", "千早化学工業株式会社", "Chihaya Chemical Industries Co., Ltd.",
              "chihaya-chem.example.jp", "chemical", "化学セプター", Size.LARGE),
    _operator("chemical-op2", "臨海ポリマー株式会社", "Rinkai Polymer Co., Ltd.",
              "rinkai-polymer.example.jp", "chemical", "化学セプター", Size.LARGE),
    _operator("chemical-op3", "有明ファインケミカル株式会社", "Ariake Fine Chemicals Co., Ltd.",
              "ariake-fc.example.jp", "chemical", "化学セプター", Size.SME),
    _operator("credit-op1", "株式会社つばさカード", "Tsubasa Card Co., Ltd.",
              "tsubasa-card.example.jp", "credit", "クレジットセプター", Size.LARGE),
    _operator("credit-op2", "あおいクレジットサービス株式会社", "Aoi Credit Service Co., Ltd.",
              "aoi-credit.example.jp", "credit", "クレジットセプター", Size.SME),
    _operator("credit-op3", "株式会社まちかど決済", "Machikado Payments Co., Ltd.",
              "machikado-pay.example.jp", "credit", "クレジットセプター", Size.SME),
    _operator("petroleum-op1", "大八洲石油株式会社", "Oyashima Oil Co., Ltd.",
              "oyashima-oil.example.jp", "petroleum", "石油セプター", Size.LARGE),
    _operator("petroleum-op2", "湾岸石油精製株式会社", "Wangan Oil Refining Co., Ltd.",
              "wangan-refining.example.jp", "petroleum", "石油セプター", Size.LARGE),
    _operator("petroleum-op3", "北浜石油販売株式会社", "Kitahama Oil Sales Co., Ltd.",
              "kitahama-oil.example.jp", "petroleum", "石油セプター", Size.SME),
    _operator("port-op1", "東湾港湾運営株式会社", "Towan Port Operations Co., Ltd.",
              "towan-port.example.jp", "port", "港湾セプター", Size.LARGE),
    _operator("port-op2", "汐見コンテナターミナル株式会社", "Shiomi Container Terminal Co., Ltd.",
              "shiomi-ct.example.jp", "port", "港湾セプター", Size.SME),
    _operator("port-op3", "白浜港湾サービス株式会社", "Shirahama Port Services Co., Ltd.",
              "shirahama-port.example.jp", "port", "港湾セプター", Size.SME),
)
# fmt: on

OTHER_PARTICIPANTS = (
    DemoOrganization(
        key="vendor1",
        name_ja="株式会社かけはしシステムズ",
        name_en="Kakehashi Systems Inc.",
        type=OrganizationType.VENDOR,
        domain="kakehashi-sys.example.jp",
        size=Size.LARGE,
    ),
    DemoOrganization(
        key="vendor2",
        name_ja="株式会社しらさぎセキュリティ",
        name_en="Shirasagi Security Inc.",
        type=OrganizationType.VENDOR,
        domain="shirasagi-sec.example.jp",
        size=Size.SME,
    ),
    DemoOrganization(
        key="partner1",
        name_ja="オーレリア国家CSIRT",
        name_en="Aurelia National CSIRT",
        type=OrganizationType.INTERNATIONAL_PARTNER,
        domain="csirt.aurelia.example.jp",
        language=Language.ENGLISH,
    ),
)

DEMO_ORGANIZATIONS = REFERENCE_BODIES + OPERATORS + OTHER_PARTICIPANTS

# Example sign-ins printed at the end of `renkei demo` and listed in docs/cli.md.
EXAMPLE_LOGINS = (
    "nco-coordinator",
    "fsa-coordinator",
    "ceptoar-finance-banks-officer",
    "finance-op1-reporter",
    "finance-op1-org_admin",
    "finance-op3-reporter",
    "jpcert-analyst",
    "vendor1-reporter",
    "partner1-officer",
)

# fmt: off
_SURNAMES = (
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田",
    "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水", "山崎", "森", "池田", "橋本",
    "阿部", "石川", "山下", "中島", "石井", "小川", "前田", "岡田", "長谷川", "藤田", "後藤", "近藤",
    "村上", "遠藤", "青木", "坂本",
)
_GIVEN_NAMES = (
    "翔太", "美咲", "大輔", "陽子", "健一", "真由美", "拓也", "恵", "直樹", "由紀", "和也", "彩", "亮",
    "智子", "誠", "麻衣", "浩二", "優子", "隆", "愛", "悠斗", "結衣", "達也", "奈々", "剛", "久美子",
    "純一", "千尋", "修", "香織", "蓮", "葵", "康平", "舞", "雅人", "沙織", "大和", "美穂", "聡",
    "理恵",
)
# fmt: on
_ENGLISH_NAMES = ("Alex Moreau", "Priya Nair", "Jonas Berg", "Maria Santos", "Kwame Mensah", "Emma Lindqvist")


# People beyond one per role: a second duty coordinator at the national centre, because situations
# are declared by one coordinator and approved by another.
SECOND_PEOPLE = {"nco": (Role.COORDINATOR,)}


def demo_username(organization: DemoOrganization, role: str) -> str:
    return f"{organization.key}-{role}"


def demo_people() -> list[tuple[DemoOrganization, str, str]]:
    """(organization, role, username) of every demo person; the second people come last, so that
    everyone else keeps the name they were generated with."""
    people = [
        (organization, role, demo_username(organization, role))
        for organization in DEMO_ORGANIZATIONS
        for role in Role.values
    ]
    people += [
        (organization, role, f"{demo_username(organization, role)}-2")
        for organization in DEMO_ORGANIZATIONS
        for role in SECOND_PEOPLE.get(organization.key, ())
    ]
    return people


def demo_usernames() -> list[str]:
    return [username for _organization, _role, username in demo_people()]


def _person_name(organization: DemoOrganization, number: int, role_index: int) -> str:
    if organization.language == Language.ENGLISH:
        return _ENGLISH_NAMES[role_index % len(_ENGLISH_NAMES)]
    # Walks surname × given name so that no two demo people share a full name.
    surname = _SURNAMES[number % len(_SURNAMES)]
    given = _GIVEN_NAMES[(number * 17 + number // len(_SURNAMES)) % len(_GIVEN_NAMES)]
    return f"{surname} {given}"


def _contact_routes(organization: DemoOrganization, index: int) -> list[ContactInput]:
    english = organization.language == Language.ENGLISH
    phone = f"03-0{index:03d}-{(index * 389) % 9000 + 1000:04d}"
    return [
        ContactInput(
            kind=ContactKind.EMAIL,
            value=f"csirt@{organization.mail_domain}",
            label="CSIRT" if english else "CSIRT窓口",
        ),
        ContactInput(
            kind=ContactKind.PHONE, value=phone, label="24-hour duty line" if english else "24時間連絡先"
        ),
    ]


@dataclass
class DemoResult:
    organizations_created: int = 0
    contact_routes_added: int = 0
    users_created: int = 0
    memberships_added: int = 0
    devices_created: int = 0
    users_deleted: int = 0
    users_retired: int = 0
    organizations_deleted: int = 0
    organizations_retired: int = 0
    organizations: dict[str, Organization] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(
            (
                self.organizations_created,
                self.contact_routes_added,
                self.users_created,
                self.memberships_added,
                self.devices_created,
                self.users_deleted,
                self.users_retired,
                self.organizations_deleted,
                self.organizations_retired,
            )
        )


@transaction.atomic
def demo_load(*, reset: bool = False) -> DemoResult:
    """Load the reference data and the demo community. Creates only what is missing, so running it
    again changes nothing; with `reset`, first removes the demo's people and organizations."""
    if settings.PRODUCTION:
        # Demo accounts share a published password and TOTP key; they must never reach real data.
        raise ValidationError(
            _("The demo community cannot be loaded into a production installation (RENKEI_ENV=production)."),
            code="production",
        )
    result = DemoResult()
    all_reference_data_load(actor=None)
    if reset:
        _remove_demo(result)
    _ensure_organizations(result)
    _ensure_people(result)
    return result


def _remove_demo(result: DemoResult) -> None:
    # People first: their memberships would otherwise keep the organizations in place.
    for user in User.objects.filter(username__in=demo_usernames()):
        if user_remove(actor=None, user=user):
            result.users_deleted += 1
        else:
            result.users_retired += 1
    created_by_demo = [org.name_ja for org in DEMO_ORGANIZATIONS if not org.reference]
    for organization in Organization.objects.filter(name_ja__in=created_by_demo):
        if organization_remove(actor=None, organization=organization):
            result.organizations_deleted += 1
        else:
            result.organizations_retired += 1


def _ensure_organizations(result: DemoResult) -> None:
    names = {org.name_ja for org in DEMO_ORGANIZATIONS} | {
        org.parent for org in DEMO_ORGANIZATIONS if org.parent
    }
    existing = {org.name_ja: org for org in Organization.objects.filter(name_ja__in=names)}
    for index, spec in enumerate(DEMO_ORGANIZATIONS, start=1):
        organization = existing.get(spec.name_ja)
        if organization is None:
            if spec.reference or (spec.parent and spec.parent not in existing):
                missing = spec.name_ja if spec.reference else spec.parent
                raise ValidationError(
                    _("The reference organization %(name)s is missing or was renamed; the demo needs it.")
                    % {"name": missing},
                    code="reference_missing",
                )
            organization = organization_create(
                actor=None,
                name_ja=spec.name_ja,
                name_en=spec.name_en,
                org_type=spec.type,
                sectors=sectors_by_code(spec.sectors),
                parent=existing[spec.parent] if spec.parent else None,
                size=spec.size,
                contacts=_contact_routes(spec, index),
            )
            result.organizations_created += 1
        else:
            current = [
                ContactInput(kind=route.kind, value=route.value, label=route.label)
                for route in organization.contact_routes.all()
            ]
            if len(current) < MINIMUM_CONTACT_ROUTES:
                present = {(route.kind, route.value) for route in current}
                added = [
                    route
                    for route in _contact_routes(spec, index)
                    if (route.kind, route.value) not in present
                ]
                contact_routes_replace(actor=None, organization=organization, contacts=current + added)
                result.contact_routes_added += len(added)
        result.organizations[spec.key] = organization


def _ensure_people(result: DemoResult) -> None:
    # One hash for everyone: hashing the same password ~500 times with Argon2 would take minutes.
    password_hash = make_password(DEMO_PASSWORD)
    users = {user.username: user for user in User.objects.filter(username__in=demo_usernames())}
    held = set(
        Membership.objects.filter(user__in=users.values()).values_list("user_id", "organization_id", "role")
    )
    with_device = set(TOTPDevice.objects.filter(user__in=users.values()).values_list("user_id", flat=True))
    for number, (spec, role, username) in enumerate(demo_people(), start=1):
        organization = result.organizations[spec.key]
        role_index = Role.values.index(role)
        user = users.get(username)
        if user is None:
            user = user_create(
                actor=None,
                username=username,
                organization=organization,
                role=role,
                email=f"{username}@{spec.mail_domain}",
                display_name=_person_name(spec, number, role_index),
                language=spec.language,
                password_hash=password_hash,
                send_welcome=False,
            )
            result.users_created += 1
        elif not user.is_active:
            # An administrator switched this demo account off; the demo respects that.
            continue
        elif (user.pk, organization.pk, role) not in held:
            membership_add(actor=None, user=user, organization=organization, role=role)
            result.memberships_added += 1
        if organization.type in TWO_FACTOR_ORGANIZATION_TYPES and user.pk not in with_device:
            two_factor_device_add(actor=None, user=user, key=DEMO_TOTP_KEY, name=DEMO_DEVICE_NAME)
            result.devices_created += 1


def demo_otp(username: str) -> tuple[str, int]:
    """The current TOTP code of `username`'s demo device and the seconds it stays valid.

    Only devices holding the published demo key qualify: this must never reveal codes of a real
    person's authenticator.
    """
    device = (
        TOTPDevice.objects.filter(user__username=username, confirmed=True, key=DEMO_TOTP_KEY)
        .order_by("pk")
        .first()
    )
    if device is None:
        raise ValidationError(
            _("%(username)s has no demo two-factor device.") % {"username": username}, code="no_device"
        )
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    now = time.time()
    totp.time = now
    remaining = device.step - int(now - device.t0) % device.step
    return f"{totp.token():0{device.digits}d}", remaining
