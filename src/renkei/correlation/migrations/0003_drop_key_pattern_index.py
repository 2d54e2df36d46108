from django.db import migrations


def drop_pattern_index_of_keys(apps, schema_editor):
    """PostgreSQL gets a second, `LIKE`-capable index for a text primary key. Keys are only ever
    compared whole, and at tens of millions of values that index is a tenth of the storage."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'correlation_correlationkey' "
            "AND indexname LIKE 'correlation_correlationkey_key_%%_like'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')


class Migration(migrations.Migration):
    # Its own migration: the index is created at the end of the migration that creates the table.
    dependencies = [("correlation", "0002_index_existing_observables")]

    operations = [migrations.RunPython(drop_pattern_index_of_keys, migrations.RunPython.noop)]
