"""`renkei audit verify`: walk the hash chain of the audit trail and report the first broken link."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from renkei.audit.services import audit_verify
from renkei.core.management.output import write_json


def _reason_text(reason: str) -> str:
    return {
        "link": _("it does not point at the record before it (a record was removed or inserted)"),
        "content": _("its content does not match its hash (it was changed)"),
        "truncated": _("records are missing from the end of the chain"),
        "beyond_head": _("it is sealed beyond the chain's head (the chain was cut back to hide it)"),
    }[reason]


class Command(BaseCommand):
    help = _("Check the audit trail.")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        verify = actions.add_parser(
            "verify", help=_("Walk the hash chain; exit with status 1 at the first broken link.")
        )
        verify.add_argument(
            "--json", dest="as_json", action="store_true", help=_("Print the result as JSON.")
        )

    def handle(self, *args, action, as_json, **options):
        check = audit_verify()
        if as_json:
            write_json(
                self.stdout,
                {
                    "ok": check.ok,
                    "checked": check.checked,
                    "broken_record_id": check.broken_record_id,
                    "reason": check.reason or None,
                },
            )
        if check.ok:
            if not as_json:
                self.stdout.write(
                    self.style.SUCCESS(
                        _("OK: the audit trail is intact (%(count)d records).") % {"count": check.checked}
                    )
                )
            return
        if check.broken_record_id is None:
            message = _("The audit trail is broken after %(count)d intact records: %(reason)s.") % {
                "count": check.checked,
                "reason": _reason_text(check.reason),
            }
        else:
            message = _("The audit trail is broken at record #%(id)d: %(reason)s.") % {
                "id": check.broken_record_id,
                "reason": _reason_text(check.reason),
            }
        raise CommandError(message, returncode=1)
