import pytest

from renkei.core.services import token_create


@pytest.fixture
def token_of():
    """An API token secret for a user, as TAXII clients send it (HTTP Basic password or Bearer)."""

    def create(user) -> str:
        _token, secret = token_create(actor=user, user=user)
        return secret

    return create
