"""The directory's administration commands: org add|import|list, user add|list, referencedata load."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation
from openpyxl import Workbook

from renkei.audit.models import AuditRecord
from renkei.directory.models import ContactRoute, Membership, Organization, Sector, User
from renkei.directory.services import REFERENCE_DATA

HEADER = "name_ja,name_en,type,sectors,parent,size,contacts"


@pytest.fixture(autouse=True)
def _english():
    # Commands speak the installation's language (Japanese by default); these tests read English.
    with translation.override("en"):
        yield


def run(*args, stdin: str | None = None) -> str:
    stdout = io.StringIO()
    options = {"stdout": stdout, "stderr": io.StringIO()}
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    call_command(*args, **options)
    return stdout.getvalue()


def run_json(*args, stdin: str | None = None):
    return json.loads(run(*args, "--json", stdin=stdin))


def directory_counts() -> dict[str, int]:
    return {
        "organizations": Organization.objects.count(),
        "contact_routes": ContactRoute.objects.count(),
        "users": User.objects.count(),
        "memberships": Membership.objects.count(),
        "audit": AuditRecord.objects.count(),
    }


def write_csv(tmp_path, *lines: str, encoding: str = "utf-8", name: str = "orgs.csv"):
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_xlsx(tmp_path, rows, name: str = "orgs.xlsx"):
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


# --- referencedata -------------------------------------------------------------------------------


def test_referencedata_load_creates_the_structure_once(db):
    reference = json.loads(REFERENCE_DATA.read_text(encoding="utf-8"))
    first = run_json("referencedata", "load")
    assert first["created"] == {
        "sectors": 15,
        "organizations": len(reference["organizations"]),
        "causes": 19,
        "deadline_profiles": 3,
        "alert_levels": 4,
        "recognition_rules": 4,
        "roster_entries": 9,
        "sector_dependencies": 44,
    }
    assert Sector.objects.count() == 15
    assert Organization.objects.filter(type="ceptoar").count() == sum(
        1 for item in reference["organizations"] if item["type"] == "ceptoar"
    )

    again = run("referencedata", "load")
    assert "0 new sectors, 0 new organizations, 0 new cause categories, 0 new deadline profiles" in again
    assert "0 new alert levels, 0 new recognition rules, 0 new roster entries" in again
    assert Sector.objects.count() == 15


# --- org add -------------------------------------------------------------------------------------


def test_org_add_creates_an_operator_with_its_ceptoar_and_contact_routes(reference_data):
    output = run(
        "org",
        "add",
        "--name",
        "テスト銀行株式会社",
        "--name-en",
        "Test Bank",
        "--type",
        "operator",
        "--sector",
        "finance",
        "--parent",
        "Banks CEPTOAR",
        "--size",
        "large",
        "--contact",
        "email:soc@test-bank.example.jp",
        "--contact",
        "phone:03-0000-1111",
    )
    organization = Organization.objects.get(name_ja="テスト銀行株式会社")
    assert f"#{organization.pk}" in output
    assert organization.parent.name_ja == "銀行等セプター"
    assert [s.code for s in organization.sectors.all()] == ["finance"]
    assert organization.size == "large"
    assert sorted(organization.contact_routes.values_list("kind", flat=True)) == ["email", "phone"]
    record = AuditRecord.objects.last()
    assert (record.action, record.object_id, record.actor_id) == ("create", str(organization.pk), None)


def test_org_add_json(reference_data):
    document = run_json(
        "org",
        "add",
        "--name",
        "みらい病院",
        "--type",
        "operator",
        "--sector",
        "medical",
        "--size",
        "sme",
        "--contact",
        "email:desk@mirai.example.jp",
        "--contact",
        "phone:03-0000-2222",
    )
    organization = Organization.objects.get(name_ja="みらい病院")
    assert document["id"] == organization.pk
    assert document["type"] == "operator"
    assert document["sectors"] == ["medical"]
    assert document["size"] == "sme"
    assert document["parent"] is None
    assert {"kind": "phone", "value": "03-0000-2222"} in document["contact_routes"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--type", "operator", "--sector", "fooo"], "Unknown sector code: fooo"),
        (["--type", "operator"], "An operator belongs to at least one sector."),
        (["--type", "ceptoar", "--parent", "存在しない団体"], "Unknown organization: 存在しない団体"),
        (["--type", "ceptoar", "--size", "large"], "Only operators and vendors have a size class."),
        (["--type", "vendor", "--contact", "email:soc@x.example.jp"], "at least 2 contact routes"),
        (
            ["--type", "vendor", "--contact", "email:nope", "--contact", "phone:03"],
            "nope is not a valid e-mail",
        ),
        (["--type", "vendor", "--contact", "fax:03", "--contact", "phone:03"], "Unknown contact kind fax"),
        (["--type", "vendor", "--contact", "soc@x.example.jp", "--contact", "phone:03"], "KIND:VALUE"),
        (["--type", "nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_org_add_rejects_bad_input_with_a_readable_message(reference_data, arguments, message):
    before = directory_counts()
    with pytest.raises(CommandError) as excinfo:
        run("org", "add", "--name", "新しい組織", *arguments)
    assert message in str(excinfo.value)
    assert "ValidationError" not in str(excinfo.value)
    assert directory_counts() == before


def test_org_add_rejects_a_duplicate_name(reference_data):
    with pytest.raises(CommandError, match="already exists"):
        run("org", "add", "--name", "金融庁", "--type", "sector_ministry")
    with pytest.raises(CommandError, match="already exists"):
        run("org", "add", "--name", "別名", "--name-en", "Banks CEPTOAR", "--type", "ceptoar")


# --- org import ----------------------------------------------------------------------------------


def test_org_import_csv_creates_every_row_with_parents_from_the_database_and_the_file(
    reference_data, tmp_path
):
    path = write_csv(
        tmp_path,
        HEADER,
        "北国セプター,Kitaguni CEPTOAR,ceptoar,electricity,セプターカウンシル,,"
        "email:c@kitaguni.example.jp;phone:03-0000-0001",
        "北国電力株式会社,Kitaguni Power,operator,electricity,Kitaguni CEPTOAR,large,"
        "email:soc@kitaguni-power.example.jp;phone:03-0000-0002",
        '"株式会社みなと銀行","Minato Bank, Ltd.",operator,finance;credit,銀行等セプター,SME,'
        "email:soc@minato.example.jp;phone:03-0000-0003;other:LINE WORKS #minato-soc",
        "データ分析合同会社,,vendor,,,sme,",
    )
    audit_before = AuditRecord.objects.count()
    output = run("org", "import", str(path))
    assert "Imported 4 organizations" in output

    power = Organization.objects.get(name_ja="北国電力株式会社")
    assert power.parent.name_ja == "北国セプター"
    assert power.parent.parent.name_ja == "セプターカウンシル"
    bank = Organization.objects.get(name_en="Minato Bank, Ltd.")
    assert sorted(bank.sectors.values_list("code", flat=True)) == ["credit", "finance"]
    assert bank.size == "sme"
    assert bank.contact_routes.get(kind="other").value == "LINE WORKS #minato-soc"
    assert Organization.objects.get(name_ja="データ分析合同会社").contact_routes.count() == 0
    assert AuditRecord.objects.count() == audit_before + 4


def test_org_import_json_lists_what_was_created(reference_data, tmp_path):
    path = write_csv(
        tmp_path, "type,name_ja,sectors", "operator,札幌ガス株式会社,gas", "operator,函館ガス株式会社,gas"
    )
    document = run_json("org", "import", str(path))
    assert document["ok"] is True
    assert document["created"] == 2
    assert [item["name_ja"] for item in document["organizations"]] == ["札幌ガス株式会社", "函館ガス株式会社"]
    assert all(isinstance(item["id"], int) for item in document["organizations"])


def test_org_import_reads_shift_jis_csv_as_saved_by_japanese_excel(reference_data, tmp_path):
    path = write_csv(tmp_path, "name_ja,type,sectors", "長崎港運株式会社,operator,port", encoding="cp932")
    run("org", "import", str(path))
    assert Organization.objects.filter(name_ja="長崎港運株式会社").exists()


def test_org_import_xlsx(reference_data, tmp_path):
    path = write_xlsx(
        tmp_path,
        [
            ["name_ja", "name_en", "type", "sectors", "parent", "size", "contacts"],
            [
                "沖縄エアポート株式会社",
                "Okinawa Airport Co.",
                "operator",
                "airport",
                "空港セプター",
                "large",
                "email:soc@oka.example.jp;phone:03-0000-0004",
            ],
            [None, None, None, None, None, None, None],
            ["石垣空港サービス株式会社", None, "operator", "airport", "Airport CEPTOAR", "sme", None],
        ],
    )
    document = run_json("org", "import", str(path))
    assert document["created"] == 2
    assert Organization.objects.get(name_ja="石垣空港サービス株式会社").parent.name_ja == "空港セプター"


def _import_fails(path, *fragments: str) -> dict:
    """Run the import, expect a refusal naming every fragment, and prove nothing was written."""
    before = directory_counts()
    with pytest.raises(CommandError) as excinfo:
        run("org", "import", str(path))
    message = str(excinfo.value)
    assert message.startswith("Nothing was imported")
    for fragment in fragments:
        assert fragment in message
    assert directory_counts() == before
    stdout = io.StringIO()
    with pytest.raises(CommandError):
        call_command("org", "import", str(path), "--json", stdout=stdout)
    document = json.loads(stdout.getvalue())
    assert document["ok"] is False
    assert document["created"] == 0
    assert directory_counts() == before
    return document


def test_org_import_unknown_sector_names_the_row_and_writes_nothing(reference_data, tmp_path):
    path = write_csv(
        tmp_path,
        "name_ja,type,sectors",
        "正しい株式会社,operator,finance",
        "誤り株式会社,operator,fooo",
    )
    document = _import_fails(path, "row 3: Unknown sector code: fooo")
    assert document["errors"] == [{"row": 3, "message": "row 3: Unknown sector code: fooo"}]
    assert not Organization.objects.filter(name_ja="正しい株式会社").exists()


def test_org_import_reports_every_faulty_row(reference_data, tmp_path):
    path = write_csv(
        tmp_path,
        HEADER,
        "一株式会社,,operatorr,finance,,,",
        "二株式会社,,operator,finance,無い団体,,",
        "三株式会社,,operator,finance,,huge,",
        "四株式会社,,operator,,,,",
        "五株式会社,,operator,finance,,,email:bad-address;phone:03-0000-0005",
        "六株式会社,,operator,finance,,,email:soc@six.example.jp",
        "七株式会社,,operator,finance,,,fax:03-0000-0007;phone:03-0000-0008",
        "八株式会社,,operator,finance,,,soc@eight.example.jp;phone:03-0000-0009",
        ",,operator,finance,,,",
        "十株式会社,,ceptoar,,,large,",
    )
    document = _import_fails(
        path,
        "row 2: Unknown organization type operatorr",
        "row 3: Unknown organization: 無い団体",
        "row 4: Size must be large or sme.",
        "row 5: An operator belongs to at least one sector.",
        "row 6: bad-address is not a valid e-mail address.",
        "row 7: An organization needs at least 2 contact routes",
        "row 8: Unknown contact kind fax",
        "row 9: A contact route is written KIND:VALUE",
        "row 10: A name is required.",
        "row 11: Only operators and vendors have a size class.",
    )
    assert [error["row"] for error in document["errors"]] == list(range(2, 12))


def test_org_import_detects_duplicates_inside_the_file(reference_data, tmp_path):
    path = write_csv(
        tmp_path,
        "name_ja,name_en,type,sectors",
        "重複銀行株式会社,Choufuku Bank,operator,finance",
        "別の銀行株式会社,Betsu Bank,operator,finance",
        "重複銀行株式会社,,operator,finance",
        "三番目の銀行株式会社,Betsu Bank,operator,finance",
    )
    _import_fails(
        path,
        "row 4: The name 重複銀行株式会社 is already used on row 2.",
        "row 5: The name Betsu Bank is already used on row 3.",
    )


def test_org_import_detects_duplicates_against_the_database(reference_data, tmp_path):
    path = write_csv(
        tmp_path,
        "name_ja,name_en,type,sectors",
        "金融庁,,sector_ministry,",
        "新しい団体,Banks CEPTOAR,ceptoar,finance",
    )
    _import_fails(
        path,
        "row 2: An organization named 金融庁 already exists.",
        "row 3: An organization named Banks CEPTOAR already exists.",
    )


def test_org_import_requires_parents_to_come_first(reference_data, tmp_path):
    path = write_csv(
        tmp_path,
        "name_ja,type,sectors,parent",
        "子会社株式会社,operator,gas,後の親セプター",
        "後の親セプター,ceptoar,gas,",
        "自己参照セプター,ceptoar,gas,自己参照セプター",
    )
    _import_fails(
        path,
        "row 2: The parent body 後の親セプター is on row 3",
        "row 4: An organization cannot be its own parent body.",
    )


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("name,type,sectors", "row 1: unknown column(s) 'name'; missing column(s) name_ja"),
        ("name_ja,sectors", "row 1: missing column(s) type"),
        ("name_ja,type,type", "row 1: repeated column(s) type"),
        ("name_ja,type,colour", "unknown column(s) 'colour'. The columns are: name_ja, name_en, type"),
    ],
)
def test_org_import_rejects_a_bad_header(reference_data, tmp_path, header, fragment):
    path = write_csv(tmp_path, header, "何か株式会社,operator,finance")
    document = _import_fails(path, fragment)
    assert document["errors"][0]["row"] == 1


def test_org_import_rejects_rows_longer_than_the_header(reference_data, tmp_path):
    path = write_csv(tmp_path, "name_ja,type,sectors", "長い行株式会社,operator,finance,extra")
    _import_fails(path, "row 2: 4 cells, but the header has 3 columns")


def test_org_import_xlsx_errors_name_the_spreadsheet_row(reference_data, tmp_path):
    path = write_xlsx(
        tmp_path,
        [
            ["name_ja", "type", "sectors"],
            ["良い株式会社", "operator", "finance"],
            ["悪い株式会社", "operator", "fooo"],
        ],
    )
    _import_fails(path, "row 3: Unknown sector code: fooo")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("orgs.txt", b"name_ja,type\n", "must end in .csv or .xlsx"),
        ("orgs.csv", b"", "is empty"),
        ("orgs.csv", b"name_ja,type,sectors\n", "has a header but no organizations"),
        ("orgs.xlsx", b"this is not a zip file", "is not a readable Excel workbook"),
        ("orgs.csv", b"\xff\xfe\xfa\xfb\x80\x81", "is neither UTF-8 nor Shift_JIS"),
    ],
)
def test_org_import_rejects_unreadable_files(reference_data, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    before = directory_counts()
    with pytest.raises(CommandError, match=message):
        run("org", "import", str(path))
    stdout = io.StringIO()
    with pytest.raises(CommandError):
        call_command("org", "import", str(path), "--json", stdout=stdout)
    document = json.loads(stdout.getvalue())
    assert document["ok"] is False and message in document["errors"][0]["message"]
    assert directory_counts() == before


def test_org_import_missing_file(reference_data, tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run("org", "import", str(tmp_path / "missing.csv"))


# --- org list ------------------------------------------------------------------------------------


def test_org_list_filters_by_type_and_sector(community):
    output = run("org", "list", "--sector", "finance", "--type", "operator")
    assert "さくら銀行" in output and "もみじ銀行" in output
    assert "みどり病院" not in output
    assert "金融庁" not in output

    document = run_json("org", "list", "--type", "operator", "--size", "sme")
    assert {item["name_ja"] for item in document} == {"もみじ銀行", "みどり病院"}
    bank = next(item for item in document if item["name_ja"] == "もみじ銀行")
    assert bank["parent"]["name_ja"] == "銀行等セプター"


# --- user add / list -----------------------------------------------------------------------------


def test_user_add_with_password_from_stdin(community):
    output = run(
        "user",
        "add",
        "new-reporter",
        "--org",
        "Sakura Bank",
        "--role",
        "reporter",
        "--email",
        "new-reporter@sakura.example.jp",
        "--display-name",
        "新井 太郎",
        "--language",
        "en",
        "--password-stdin",
        stdin="correct horse battery staple\n",
    )
    user = User.objects.get(username="new-reporter")
    assert "Created user new-reporter" in output
    assert user.check_password("correct horse battery staple")
    assert (user.display_name, user.language, user.email) == (
        "新井 太郎",
        "en",
        "new-reporter@sakura.example.jp",
    )
    membership = user.memberships.get()
    assert (membership.organization, membership.role) == (community.bank_a, "reporter")
    record = AuditRecord.objects.last()
    assert (record.object_type, record.object_id, record.actor_id) == ("directory.user", str(user.pk), None)
    assert "password" not in record.after


def test_user_add_json_without_password(community):
    document = run_json("user", "add", "officer2", "--org", "さくら銀行", "--role", "officer")
    user = User.objects.get(username="officer2")
    assert document["id"] == user.pk
    assert document["has_password"] is False
    assert document["memberships"] == [
        {"organization": {"id": community.bank_a.pk, "name_ja": "さくら銀行"}, "role": "officer"}
    ]
    assert not user.has_usable_password()


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [
        (
            ["bank_a_reporter", "--org", "さくら銀行", "--role", "reporter"],
            None,
            "username bank_a_reporter is taken",
        ),
        (["x", "--org", "無い組織", "--role", "reporter"], None, "Unknown organization: 無い組織"),
        (
            ["x", "--org", "さくら銀行", "--role", "reporter", "--email", "x@"],
            None,
            "x@ is not a valid e-mail",
        ),
        (["bad name", "--org", "さくら銀行", "--role", "reporter"], None, "may contain only letters"),
        (["x", "--org", "さくら銀行", "--role", "reporter", "--password-stdin"], "12345\n", "too short"),
        (["x", "--org", "さくら銀行", "--role", "reporter", "--password-stdin"], "", "held no password"),
        (["x", "--org", "さくら銀行", "--role", "boss"], None, "invalid choice: 'boss'"),
    ],
)
def test_user_add_rejects_bad_input(community, arguments, stdin, message):
    before = directory_counts()
    with pytest.raises(CommandError) as excinfo:
        run("user", "add", *arguments, stdin=stdin)
    assert message in str(excinfo.value)
    assert directory_counts() == before


def test_user_list(community):
    output = run("user", "list", "--org", "Sakura Bank")
    assert "bank_a_reporter" in output and "bank_a_admin" in output
    assert "bank_b_reporter" not in output
    document = run_json("user", "list", "--org", "さくら銀行")
    assert {item["username"] for item in document} == {"bank_a_reporter", "bank_a_admin"}
