"""`renkei situations rules test|list`: try the recognition rules against past reports, list them."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from renkei.core.management.output import format_table, iso, local, write_json
from renkei.situations.models import RecognitionRule
from renkei.situations.rules import replay


def _moment(value: str) -> dt.datetime:
    """A date (midnight, Japan time) or an ISO 8601 date-time."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(_("%(value)s is not a date (YYYY-MM-DD) or a date-time.") % {"value": value})
        moment = dt.datetime.combine(day, dt.time())
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = _("Situations: try the recognition rules against past reports, list the rules.")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        rules = actions.add_parser("rules", help=_("Recognition rules."))
        rule_actions = rules.add_subparsers(dest="rules_action", required=True)
        test = rule_actions.add_parser(
            "test",
            help=_(
                "Replay the reports submitted since a date through the rules (switched on or not) and print "
                "what would have fired. Nothing is proposed or changed."
            ),
        )
        test.add_argument("--since", required=True, metavar="DATE", help=_("YYYY-MM-DD or an ISO date-time."))
        test.add_argument("--until", metavar="DATE", help=_("YYYY-MM-DD or an ISO date-time; default now."))
        test.add_argument(
            "--rule", dest="codes", action="append", metavar="CODE", help=_("Only this rule (repeatable).")
        )
        test.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))
        list_ = rule_actions.add_parser("list", help=_("List the rules and whether each is switched on."))
        list_.add_argument("--json", dest="as_json", action="store_true", help=_("Print the result as JSON."))

    def handle(self, *args, action, rules_action, **options):
        return getattr(self, f"handle_{rules_action}")(**options)

    def handle_test(self, *, since, until, codes, as_json, **_options):
        rules = RecognitionRule.objects.select_related("level").order_by("code")
        if codes:
            rules = rules.filter(code__in=codes)
            unknown = sorted(set(codes) - set(rules.values_list("code", flat=True)))
            if unknown:
                raise CommandError(_("Unknown rule: %(codes)s") % {"codes": ", ".join(unknown)})
        start, end = _moment(since), _moment(until) if until else timezone.now()
        if start > end:
            raise CommandError(_("--since is after --until."))
        firings = replay(list(rules), since=start, until=end)
        if as_json:
            write_json(
                self.stdout,
                [
                    {
                        "rule": firing.rule.code,
                        "active": firing.rule.active,
                        "level": firing.rule.level.code,
                        "at": iso(firing.at),
                        "report_ids": [str(pk) for pk in firing.report_ids],
                        "sector_count": len(firing.sector_ids),
                    }
                    for firing in firings
                ],
            )
            return
        if not firings:
            self.stdout.write(
                _("No rule would have fired between %(since)s and %(until)s.")
                % {"since": local(start), "until": local(end)}
            )
            return
        rows = [
            (
                local(f.at),
                f.rule.code,
                "" if f.rule.active else _("off"),
                f.rule.level,
                len(f.report_ids),
                len(f.sector_ids),
            )
            for f in firings
        ]
        headers = [_("First fired"), _("Rule"), _("Switched"), _("Level"), _("Reports"), _("Sectors")]
        self.stdout.write(format_table(headers, rows))
        self.stdout.write(_("%(count)d proposals would have been opened.") % {"count": len(firings)})

    def handle_list(self, *, as_json, **_options):
        rules = RecognitionRule.objects.select_related("level").order_by("code")
        if as_json:
            write_json(
                self.stdout,
                [
                    {
                        "code": r.code,
                        "name": str(r),
                        "kind": r.kind,
                        "level": r.level.code,
                        "active": r.active,
                    }
                    for r in rules
                ],
            )
            return
        rows = [(r.code, r, r.get_kind_display(), r.level, _("on") if r.active else _("off")) for r in rules]
        self.stdout.write(format_table([_("Code"), _("Name"), _("Kind"), _("Level"), _("Switched")], rows))
