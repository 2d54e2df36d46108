"""`renkei referencedata load`: the real structure of Japan's CIP community (sectors, bodies), the
cause taxonomy and the reporting regimes."""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from renkei.core.management.output import write_json
from renkei.core.referencedata import all_reference_data_load


class Command(BaseCommand):
    help = _("Load the reference sectors, bodies, CEPTOARs, cause categories and deadline profiles.")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        load = actions.add_parser(
            "load",
            help=_(
                "Create the reference sectors and bodies that are missing; existing ones are left as edited."
            ),
        )
        load.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

    def handle(self, *args, action, as_json, verbosity, **options):
        created = all_reference_data_load(actor=None)
        if as_json:
            write_json(self.stdout, {"created": created})
        elif verbosity > 0:
            self.stdout.write(
                _(
                    "Reference data loaded: %(sectors)d new sectors, %(organizations)d new organizations, "
                    "%(causes)d new cause categories, %(deadline_profiles)d new deadline profiles, "
                    "%(alert_levels)d new alert levels, %(recognition_rules)d new recognition rules, "
                    "%(roster_entries)d new roster entries, %(sector_dependencies)d new sector dependencies "
                    "(existing ones were left unchanged)."
                )
                % created
            )
