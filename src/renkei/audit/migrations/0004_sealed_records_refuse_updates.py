"""The database refuses any change to a sealed audit record.

Sealing is the only legitimate update and it only touches unsealed rows, so the column grant that
sealing needs no longer lets the application's role move, re-chain or rewrite a record once it is
in the chain. Run as the owner; the application's role cannot drop the trigger.

SQLite drops a table's triggers when Django rebuilds the table, so a later migration that alters
`AuditRecord` must create the trigger again there
(`test_the_database_refuses_any_update_of_a_sealed_record` fails if it does not).
"""

from django.db import migrations

TRIGGER = "audit_sealed_record_unchanged"

CREATE = {
    "postgresql": [
        f"""
        CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                ERRCODE = 'integrity_constraint_violation',
                MESSAGE = 'audit record ' || OLD.id || ' is sealed and cannot be changed';
        END;
        $$
        """,
        f"""
        CREATE TRIGGER {TRIGGER} BEFORE UPDATE ON audit_auditrecord
        FOR EACH ROW WHEN (OLD.seq IS NOT NULL) EXECUTE FUNCTION {TRIGGER}()
        """,
    ],
    "sqlite": [
        f"""
        CREATE TRIGGER {TRIGGER} BEFORE UPDATE ON audit_auditrecord
        WHEN OLD.seq IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'audit record is sealed and cannot be changed'); END
        """,
    ],
}

DROP = {
    "postgresql": [f"DROP TRIGGER {TRIGGER} ON audit_auditrecord", f"DROP FUNCTION {TRIGGER}()"],
    "sqlite": [f"DROP TRIGGER {TRIGGER}"],
}


def _run(statements: dict[str, list[str]], schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in statements:
        raise NotImplementedError(f"sealed audit records are only protected on {', '.join(statements)}")
    for sql in statements[vendor]:
        schema_editor.execute(sql, params=None)


def create_trigger(apps, schema_editor):
    _run(CREATE, schema_editor)


def drop_trigger(apps, schema_editor):
    _run(DROP, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_records_sealed_after_commit"),
    ]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger),
    ]
