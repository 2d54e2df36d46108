import pytest

from renkei.core.services import token_create
from renkei.interop import services
from renkei.interop.services import index_stored_objects, ingest


@pytest.fixture
def token_of():
    """An API token secret for a user, as TAXII clients send it (HTTP Basic password or Bearer)."""

    def create(user) -> str:
        _token, secret = token_create(actor=user, user=user)
        return secret

    return create


class RunAtOnce:
    """Stands in for a task: `enqueue` runs its function straight away."""

    def __init__(self, function):
        self.function = function

    def enqueue(self, **arguments):
        return self.function(**arguments)


@pytest.fixture
def ingest_indexed(monkeypatch):
    """`ingest`, with the correlation indexing it queues run at once instead of by a worker
    (test_feeds.py runs the real queue and worker)."""
    monkeypatch.setattr(services, "stix_sightings_index", RunAtOnce(index_stored_objects))
    return ingest
