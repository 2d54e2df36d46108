"""What the PostgreSQL benchmarks share: their own database, created on first use, and Django set up
against it."""

import os
import sys
import tempfile


def create_database(url: str, *, fresh: bool = False) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(server + "/postgres", autocommit=True) as connection:
        if fresh:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(default_url: str) -> None:
    """Point Renkei at the benchmark's database (DATABASE_URL, or `default_url`) and migrate it."""
    os.environ.setdefault("DATABASE_URL", default_url)
    os.environ.setdefault("RENKEI_DATA_DIR", tempfile.mkdtemp(prefix="renkei-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "renkei.settings"
    if not os.environ["DATABASE_URL"].startswith("postgres"):
        sys.exit("This benchmark is about PostgreSQL: set DATABASE_URL=postgres://…")
    create_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
