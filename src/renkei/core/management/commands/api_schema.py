"""`renkei api_schema`: print, check or update the committed OpenAPI snapshot."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from renkei.api import OPENAPI_SNAPSHOT, openapi_document


class Command(BaseCommand):
    help = _(
        "Print the API's OpenAPI schema. --check compares it with the committed snapshot; "
        "--update rewrites the snapshot after a deliberate API change."
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--check", action="store_true", help=_("Exit non-zero if the snapshot is out of date.")
        )
        action.add_argument(
            "--update", action="store_true", help=_("Write the current schema to the snapshot.")
        )

    def handle(self, *args, check: bool, update: bool, **options):
        document = openapi_document()
        if update:
            OPENAPI_SNAPSHOT.write_text(document, encoding="utf-8")
            self.stdout.write(_("Wrote %(path)s") % {"path": OPENAPI_SNAPSHOT})
        elif check:
            committed = OPENAPI_SNAPSHOT.read_text(encoding="utf-8") if OPENAPI_SNAPSHOT.exists() else ""
            if committed != document:
                raise CommandError(
                    _("%(path)s is out of date; run `renkei api_schema --update` and commit it.")
                    % {"path": OPENAPI_SNAPSHOT}
                )
            self.stdout.write(_("The OpenAPI snapshot is up to date."))
        else:
            self.stdout.write(document, ending="")
