"""Loading many rows at once, for imports of tens of thousands of objects.

The ORM's bulk_create quotes every value into the statement, which for 50,000 STIX objects costs
more than storing them. Rows are instead loaded with PostgreSQL's COPY (executemany on SQLite):
straight into place when the caller knows they are new, or into a temporary staging table and moved
into place with one set-based statement, which can also leave out rows that are already there. Values
must already be in the database's form (`db_value`).
"""

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import connection


def db_value(value):
    """A Python value as the current database stores it (SQLite keeps datetimes as text)."""
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def staging_table(name: str, columns: dict[str, str]) -> None:
    """An empty temporary table `name` (column → SQL type) for this connection, used inside a
    transaction. It lives as long as the connection and is emptied before each use, so callers need
    not clean up after themselves."""
    definition = ", ".join(f"{column} {sql_type}" for column, sql_type in columns.items())
    # On PostgreSQL the rows go at commit: a temporary table is never vacuumed, and rows deleted one
    # by one would pile up as dead tuples for as long as the connection lives.
    on_commit = " ON COMMIT DELETE ROWS" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({definition}){on_commit}")
        cursor.execute(f"DELETE FROM {name}")  # noqa: S608 (names come from code, never from input)


def load_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Append `rows` to `table` in the current transaction. `rows` may be a generator, but reading it
    must not query the database: on PostgreSQL the COPY holds the connection until it ends."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608
                [[db_value(value) for value in row] for row in rows],
            )
