"""Running data migrations in tests: rewind to the state before one, build rows with the historical
models, run it, and come back to the latest migrations whatever happens.

Needs a transactional database: SQLite's schema editor cannot run inside the test's transaction."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps


def migrate_to(*targets: tuple[str, str]) -> StateApps:
    """Migrate forwards or backwards to `targets`; returns the historical models of every app there."""
    return MigrationExecutor(connection).migrate(list(targets)).apps


@contextmanager
def back_to_the_latest_migrations_afterwards() -> Iterator[None]:
    try:
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
