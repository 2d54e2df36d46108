"""Fewer indexes on audit records: every write adds a record and every seal rewrites it, and nothing
looks records up by hash, or by object type or id alone (`audit_object_idx` serves lookups by object).

Altering the fields makes SQLite rebuild the table, which drops the trigger that refuses changes to
sealed records (migration 0004); it is created again after the rebuild, both ways.
"""

import importlib

from django.db import migrations, models

sealed_guard = importlib.import_module("renkei.audit.migrations.0004_sealed_records_refuse_updates")


def sqlite_guard_restore(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {sealed_guard.TRIGGER}", params=None)
        sealed_guard.create_trigger(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_sealed_records_refuse_updates"),
    ]

    operations = [
        # Undoing the alterations rebuilds the table too: restore the guard after them.
        migrations.RunPython(migrations.RunPython.noop, sqlite_guard_restore),
        migrations.AlterField(
            model_name="auditrecord",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True, verbose_name="hash"),
        ),
        migrations.AlterField(
            model_name="auditrecord",
            name="object_id",
            field=models.CharField(blank=True, max_length=64, verbose_name="object id"),
        ),
        migrations.AlterField(
            model_name="auditrecord",
            name="object_type",
            field=models.CharField(blank=True, max_length=100, verbose_name="object type"),
        ),
        migrations.RunPython(sqlite_guard_restore, migrations.RunPython.noop),
    ]
