"""`renkei token create|revoke|list`."""

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone, translation

from renkei.audit.models import AuditRecord
from renkei.core.models import ApiToken, hash_token
from renkei.core.services import token_authenticate


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def run(*args) -> str:
    stdout = io.StringIO()
    call_command("token", *args, stdout=stdout)
    return stdout.getvalue()


def run_json(*args):
    return json.loads(run(*args, "--json"))


def test_create_prints_the_secret_once_with_its_id(community):
    output = run("create", "bank_a_reporter", "--name", "SOC script")
    token = ApiToken.objects.get(user=community.bank_a_reporter)
    secret = next(line for line in output.splitlines() if line.startswith("rk_"))
    assert token.public_id in output
    assert "cannot show it again" in output
    assert token.key_hash == hash_token(secret)
    assert token.name == "SOC script"
    assert token_authenticate(secret) == token
    record = AuditRecord.objects.last()
    assert (record.action, record.object_id, record.actor_id) == ("token_create", str(token.pk), None)
    assert secret not in json.dumps(record.after)


def test_create_json_and_expiry(community):
    document = run_json("create", "bank_a_reporter", "--expires-days", "7")
    token = ApiToken.objects.get(public_id=document["id"])
    assert token.key_hash == hash_token(document["token"])
    assert document["user"] == "bank_a_reporter"
    assert document["status"] == "active"
    expires = dt.datetime.fromisoformat(document["expires_at"])
    assert abs(expires - (timezone.now() + dt.timedelta(days=7))) < dt.timedelta(minutes=1)


def test_default_expiry_is_ninety_days(community):
    document = run_json("create", "bank_a_reporter")
    expires = dt.datetime.fromisoformat(document["expires_at"])
    assert abs(expires - (timezone.now() + dt.timedelta(days=90))) < dt.timedelta(minutes=1)


def test_an_expired_token_stops_working_and_is_listed_as_expired(community):
    document = run_json("create", "bank_a_reporter", "--expires-days", "1")
    ApiToken.objects.filter(public_id=document["id"]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert token_authenticate(document["token"]) is None
    listed = run_json("list", "bank_a_reporter")
    assert [(item["id"], item["status"]) for item in listed] == [(document["id"], "expired")]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nobody"], "Unknown user: nobody"),
        (["bank_a_reporter", "--expires-days", "0"], "at least one day"),
        (["bank_a_reporter", "--expires-days", "soon"], "invalid int value"),
    ],
)
def test_create_errors(community, arguments, message):
    with pytest.raises(CommandError, match=message):
        run("create", *arguments)
    assert not ApiToken.objects.exists()


def test_create_refuses_inactive_users(community):
    community.bank_b_reporter.is_active = False
    community.bank_b_reporter.save()
    with pytest.raises(CommandError, match="inactive"):
        run("create", "bank_b_reporter")


def test_revoke(community):
    created = run_json("create", "bank_a_reporter")
    output = run("revoke", created["id"])
    assert f"Revoked token {created['id']}" in output
    assert token_authenticate(created["token"]) is None
    assert ApiToken.objects.get(public_id=created["id"]).revoked_at is not None
    record = AuditRecord.objects.last()
    assert record.action == "token_revoke"

    audit_count = AuditRecord.objects.count()
    again = run_json("revoke", created["id"])
    assert again["already_revoked"] is True
    assert again["status"] == "revoked"
    assert AuditRecord.objects.count() == audit_count
    assert "already revoked" in run("revoke", created["id"])


def test_revoke_unknown_token(community):
    with pytest.raises(CommandError, match="Unknown token: tok_missing"):
        run("revoke", "tok_missing")


def test_list_never_shows_secrets(community):
    first = run_json("create", "bank_a_reporter", "--name", "first")
    second = run_json("create", "bank_b_reporter", "--name", "second")
    run("revoke", second["id"])

    listed = run_json("list")
    assert {(item["id"], item["user"], item["status"]) for item in listed} == {
        (first["id"], "bank_a_reporter", "active"),
        (second["id"], "bank_b_reporter", "revoked"),
    }
    assert all("token" not in item for item in listed)
    text = run("list")
    assert first["id"] in text and second["id"] in text
    assert first["token"] not in text and second["token"] not in text
    assert [item["id"] for item in run_json("list", "bank_b_reporter")] == [second["id"]]
