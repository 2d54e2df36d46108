"""Full-text search over reports and anonymized copies, Japanese included (see sharing/search.py).

SQLite: an FTS5 index with the `trigram` tokenizer, which finds any substring of three or more
characters in any script. It is contentless (the text already lives in the table), so its integer
rowids come from a small key table that maps them to the UUID primary keys; triggers keep both in
step with every insert, update and delete. Django rebuilds a SQLite table to alter a column, which
drops its triggers: a later migration that alters title or narrative must create them again (the
search tests fail loudly if they are missing).

PostgreSQL: pg_trgm GIN indexes on UPPER(column), the expression Django's `icontains` compares, so
substring search in any script uses the index.

The indexes are database objects only; the models do not change.
"""

from django.db import migrations

SEARCHED_TABLES = ("sharing_report", "sharing_anonymizedreport")
SEARCHED_COLUMNS = ("title", "narrative")


def sqlite_statements(table: str) -> list[str]:
    keys, index = f"{table}_search_key", f"{table}_fts"
    return [
        f"CREATE TABLE {keys} (id INTEGER PRIMARY KEY, object_id char(32) NOT NULL UNIQUE)",
        f"CREATE VIRTUAL TABLE {index} USING fts5(title, narrative, content='', tokenize='trigram')",
        f"""CREATE TRIGGER {table}_search_insert AFTER INSERT ON {table} BEGIN
            INSERT INTO {keys} (object_id) VALUES (new.id);
            INSERT INTO {index} (rowid, title, narrative)
                VALUES ((SELECT id FROM {keys} WHERE object_id = new.id), new.title, new.narrative);
        END""",
        # A contentless index forgets a row by being told the exact values it indexed.
        f"""CREATE TRIGGER {table}_search_update AFTER UPDATE OF title, narrative ON {table}
            WHEN old.title IS NOT new.title OR old.narrative IS NOT new.narrative BEGIN
            INSERT INTO {index} ({index}, rowid, title, narrative)
                VALUES ('delete', (SELECT id FROM {keys} WHERE object_id = old.id), old.title, old.narrative);
            INSERT INTO {index} (rowid, title, narrative)
                VALUES ((SELECT id FROM {keys} WHERE object_id = new.id), new.title, new.narrative);
        END""",
        f"""CREATE TRIGGER {table}_search_delete AFTER DELETE ON {table} BEGIN
            INSERT INTO {index} ({index}, rowid, title, narrative)
                VALUES ('delete', (SELECT id FROM {keys} WHERE object_id = old.id), old.title, old.narrative);
            DELETE FROM {keys} WHERE object_id = old.id;
        END""",
        # Rows written before this migration.
        f"INSERT INTO {keys} (object_id) SELECT id FROM {table}",
        f"""INSERT INTO {index} (rowid, title, narrative)
            SELECT k.id, t.title, t.narrative FROM {table} t JOIN {keys} k ON k.object_id = t.id""",
    ]


def sqlite_reverse_statements(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_search_insert",
        f"DROP TRIGGER IF EXISTS {table}_search_update",
        f"DROP TRIGGER IF EXISTS {table}_search_delete",
        f"DROP TABLE IF EXISTS {table}_fts",
        f"DROP TABLE IF EXISTS {table}_search_key",
    ]


def postgresql_statements(table: str) -> list[str]:
    return [
        f"CREATE INDEX IF NOT EXISTS {table}_{column}_trgm ON {table} "
        f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        for column in SEARCHED_COLUMNS
    ]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        statements = [s for table in SEARCHED_TABLES for s in sqlite_statements(table)]
    elif vendor == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
        statements = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"]
        statements += [s for table in SEARCHED_TABLES for s in postgresql_statements(table)]
    else:
        return
    for statement in statements:
        schema_editor.execute(statement, params=None)


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        statements = [s for table in SEARCHED_TABLES for s in sqlite_reverse_statements(table)]
    elif vendor == "postgresql":
        # The extension stays: other objects may depend on it.
        statements = [
            f"DROP INDEX IF EXISTS {table}_{column}_trgm"
            for table in SEARCHED_TABLES
            for column in SEARCHED_COLUMNS
        ]
    else:
        return
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("sharing", "0001_reports_advisories_anonymized_copies"),
    ]

    operations = [
        migrations.RunPython(install, uninstall, elidable=False),
    ]
