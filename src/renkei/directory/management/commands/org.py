"""`renkei org add|import|list`: organizations from the command line, for onboarding scripts."""

import csv
import io
import zipfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from renkei.core.management.output import command_error, format_table, write_json
from renkei.directory.choices import OrganizationType, SizeClass
from renkei.directory.models import Organization
from renkei.directory.services import (
    IMPORT_COLUMNS,
    IMPORT_REQUIRED_COLUMNS,
    ContactInput,
    OrganizationImportRow,
    import_row_error,
    organization_by_name,
    organization_create,
    organizations_import,
    sectors_by_code,
)

# Spreadsheets saved by Japanese Excel are often Shift_JIS (cp932) rather than UTF-8.
CSV_ENCODINGS = ("utf-8-sig", "cp932")
XLSX_SUFFIXES = (".xlsx", ".xlsm")


def organization_json(organization: Organization) -> dict:
    parent = organization.parent
    return {
        "id": organization.pk,
        "name_ja": organization.name_ja,
        "name_en": organization.name_en,
        "type": organization.type,
        "sectors": [sector.code for sector in organization.sectors.all()],
        "size": organization.size,
        "parent": {"id": parent.pk, "name_ja": parent.name_ja} if parent else None,
        "active": organization.active,
        "contact_routes": [
            {"kind": route.kind, "value": route.value} for route in organization.contact_routes.all()
        ],
    }


def _read_csv(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    for encoding in CSV_ENCODINGS:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise CommandError(_("%(file)s is neither UTF-8 nor Shift_JIS text.") % {"file": path})
    try:
        return [[cell.strip() for cell in record] for record in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as error:
        raise CommandError(
            _("%(file)s is not a valid CSV file: %(error)s") % {"file": path, "error": error}
        ) from None


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_xlsx(path: Path) -> list[list[str]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError):
        raise CommandError(_("%(file)s is not a readable Excel workbook.") % {"file": path}) from None
    try:
        # The first sheet holds the organizations; others (notes, lists of codes) are ignored.
        sheet = workbook.worksheets[0]
        return [[_cell_text(value) for value in row] for row in sheet.iter_rows(min_row=1, values_only=True)]
    finally:
        workbook.close()


def read_import_file(path: Path) -> list[OrganizationImportRow]:
    """The data rows of a CSV or XLSX import file; problems with its layout as a ValidationError."""
    if not path.is_file():
        raise CommandError(_("No such file: %(file)s") % {"file": path})
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _read_csv(path)
    elif suffix in XLSX_SUFFIXES:
        records = _read_xlsx(path)
    else:
        raise CommandError(_("Import files must end in .csv or .xlsx (got %(file)s).") % {"file": path.name})

    # Row numbers are the ones a spreadsheet shows: the header is row 1.
    numbered = [(number, cells) for number, cells in enumerate(records, start=1) if any(cells)]
    if not numbered:
        raise CommandError(_("%(file)s is empty.") % {"file": path})
    header_row, header_cells = numbered[0]
    header = [cell.strip().lower() for cell in header_cells]
    while header and not header[-1]:
        header.pop()
    problems = []
    unknown = [column for column in header if column not in IMPORT_COLUMNS]
    if unknown:
        problems.append(_("unknown column(s) %(columns)s") % {"columns": ", ".join(repr(c) for c in unknown)})
    missing = [column for column in IMPORT_REQUIRED_COLUMNS if column not in header]
    if missing:
        problems.append(_("missing column(s) %(columns)s") % {"columns": ", ".join(missing)})
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        problems.append(_("repeated column(s) %(columns)s") % {"columns": ", ".join(repeated)})
    if problems:
        raise ValidationError(
            [
                import_row_error(
                    header_row,
                    _("%(problems)s. The columns are: %(columns)s")
                    % {"problems": "; ".join(problems), "columns": ", ".join(IMPORT_COLUMNS)},
                )
            ]
        )

    rows, errors = [], []
    for number, cells in numbered[1:]:
        if any(cells[len(header) :]):
            errors.append(
                import_row_error(
                    number,
                    _("%(cells)d cells, but the header has %(columns)d columns")
                    % {"cells": len(cells), "columns": len(header)},
                )
            )
            continue
        values = dict(zip(header, cells, strict=False))
        rows.append(
            OrganizationImportRow(row=number, **{column: values.get(column, "") for column in header})
        )
    if errors:
        raise ValidationError(errors)
    if not rows:
        raise CommandError(_("%(file)s has a header but no organizations.") % {"file": path})
    return rows


class Command(BaseCommand):
    help = _("Add, import and list organizations.")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)

        add = actions.add_parser("add", help=_("Add one organization."))
        add.add_argument("--name", required=True, help=_("Japanese name (unique)."))
        add.add_argument("--name-en", default="", help=_("English name."))
        add.add_argument(
            "--type",
            dest="org_type",
            required=True,
            choices=OrganizationType.values,
            help=_("Organization type."),
        )
        add.add_argument(
            "--sector",
            action="append",
            default=[],
            metavar="CODE",
            help=_("Sector code; repeat for several."),
        )
        add.add_argument("--parent", default="", metavar="NAME", help=_("Parent body, e.g. the CEPTOAR."))
        add.add_argument(
            "--size", default="", choices=SizeClass.values, help=_("Size class (operators, vendors).")
        )
        add.add_argument(
            "--contact",
            action="append",
            default=[],
            metavar="KIND:VALUE",
            help=_("Contact route such as email:soc@example.jp or phone:03-1234-5678; give at least two."),
        )
        add.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

        import_ = actions.add_parser(
            "import", help=_("Import organizations from a CSV or XLSX file, all or none.")
        )
        import_.add_argument(
            "file", type=Path, help=_("A .csv or .xlsx file; see docs/cli.md for the columns.")
        )
        import_.add_argument(
            "--json", dest="as_json", action="store_true", help=_("Print the result as JSON.")
        )

        list_ = actions.add_parser("list", help=_("List organizations."))
        list_.add_argument(
            "--type", dest="org_type", choices=OrganizationType.values, help=_("Only this type.")
        )
        list_.add_argument("--sector", metavar="CODE", help=_("Only this sector."))
        list_.add_argument("--size", choices=SizeClass.values, help=_("Only this size class."))
        list_.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    def handle_add(self, *, name, name_en, org_type, sector, parent, size, contact, as_json, **_options):
        try:
            organization = organization_create(
                actor=None,
                name_ja=name,
                name_en=name_en,
                org_type=org_type,
                sectors=sectors_by_code(sector),
                parent=organization_by_name(parent) if parent else None,
                size=size,
                contacts=[ContactInput.parse(text) for text in contact],
            )
        except ValidationError as error:
            raise command_error(error) from None
        if as_json:
            write_json(self.stdout, organization_json(organization))
        else:
            self.stdout.write(
                _("Created organization #%(id)d: %(name)s (%(type)s)")
                % {
                    "id": organization.pk,
                    "name": organization.name_ja,
                    "type": organization.get_type_display(),
                }
            )

    def handle_import(self, *, file, as_json, **_options):
        try:
            organizations = organizations_import(actor=None, rows=read_import_file(file))
        except CommandError as error:
            if as_json:
                write_json(
                    self.stdout, {"ok": False, "created": 0, "errors": [{"row": None, "message": str(error)}]}
                )
            raise
        except ValidationError as error:
            if as_json:
                errors = [
                    {"row": (item.params or {}).get("row"), "message": message}
                    for item in error.error_list
                    for message in item.messages
                ]
                write_json(self.stdout, {"ok": False, "created": 0, "errors": errors})
            raise CommandError(
                _("Nothing was imported. Fix these problems and run the import again:")
                + "\n"
                + "\n".join(error.messages)
            ) from None
        if as_json:
            write_json(
                self.stdout,
                {
                    "ok": True,
                    "created": len(organizations),
                    "organizations": [
                        {"id": org.pk, "name_ja": org.name_ja, "name_en": org.name_en, "type": org.type}
                        for org in organizations
                    ],
                },
            )
        else:
            self.stdout.write(
                _("Imported %(count)d organizations from %(file)s.")
                % {"count": len(organizations), "file": file}
            )

    def handle_list(self, *, org_type, sector, size, as_json, **_options):
        organizations = Organization.objects.select_related("parent").prefetch_related(
            "sectors", "contact_routes"
        )
        if org_type:
            organizations = organizations.filter(type=org_type)
        if sector:
            organizations = organizations.filter(sectors__code=sector)
        if size:
            organizations = organizations.filter(size=size)
        if as_json:
            write_json(self.stdout, [organization_json(org) for org in organizations])
            return
        rows = [
            (
                org.pk,
                org.type,
                org.name_ja,
                org.name_en,
                ",".join(s.code for s in org.sectors.all()),
                org.size,
                org.parent.name_ja if org.parent else "",
                "" if org.active else _("inactive"),
            )
            for org in organizations
        ]
        headers = [_("id"), _("type"), _("name"), _("English name"), _("sectors"), _("size"), _("parent"), ""]
        self.stdout.write(format_table(headers, rows))
