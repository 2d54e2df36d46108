"""Grants carry their report's TLP:RED flag and reporters hold a grant of their own, so visibility is
decided on grant rows alone; anonymized copies no longer record who made them (the audit trail
does), since a copy made by the reporting organization would otherwise name its source."""

import importlib

from django.db import migrations, models

full_text_search = importlib.import_module("renkei.sharing.migrations.0002_full_text_search")


def flag_red_grants_and_grant_reporters(apps, schema_editor):
    Report = apps.get_model("sharing", "Report")
    ReportGrant = apps.get_model("sharing", "ReportGrant")
    ReportGrant.objects.filter(report__tlp="RED").update(report_is_red=True)
    missing = Report.objects.exclude(grants__user_id=models.F("reporter_id"))
    ReportGrant.objects.bulk_create(
        ReportGrant(
            report=report,
            user_id=report.reporter_id,
            reason="source",
            granted_by_id=report.reporter_id,
            report_is_red=report.tlp == "RED",
        )
        for report in missing.iterator()
    )


def restore_search_triggers(apps, schema_editor):
    # SQLite rebuilt sharing_anonymizedreport to drop a column, and its triggers went with the old
    # table; the index and key tables are separate and still hold every row.
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in full_text_search.sqlite_statements("sharing_anonymizedreport"):
        if statement.startswith("CREATE TRIGGER"):
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("sharing", "0002_full_text_search"),
    ]

    operations = [
        migrations.RemoveField(model_name="anonymizedreport", name="created_by"),
        migrations.RunPython(restore_search_triggers, migrations.RunPython.noop, elidable=False),
        migrations.AddField(
            model_name="reportgrant",
            name="report_is_red",
            field=models.BooleanField(default=False, editable=False, verbose_name="report is TLP:RED"),
        ),
        migrations.RunPython(flag_red_grants_and_grant_reporters, migrations.RunPython.noop, elidable=False),
    ]
