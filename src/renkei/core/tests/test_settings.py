"""Settings come from the environment; each case runs `renkei` in a fresh process with a clean one."""

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

PRINT_SETTINGS = (
    "import json; from django.conf import settings as s; "
    "db = s.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'name': str(db['NAME']), 'host': db.get('HOST', ''), "
    "'options': db.get('OPTIONS', {}), 'secret_key': s.SECRET_KEY, 'hosts': s.ALLOWED_HOSTS, "
    "'email_backend': s.EMAIL_BACKEND, 'email_file_path': str(s.EMAIL_FILE_PATH)}))"
)


def renkei(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m renkei ARGS` with only the variables given here (and PATH)."""
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(data_dir),
        "PYTHONUTF8": "1",
        "RENKEI_DATA_DIR": str(data_dir),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "renkei", *args],
        env=environment,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )


def effective_settings(data_dir: Path, **env: str) -> dict:
    result = renkei("shell", "--no-imports", "-c", PRINT_SETTINGS, data_dir=data_dir, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def production_env(**overrides: str) -> dict[str, str]:
    return {
        "RENKEI_ENV": "production",
        "RENKEI_SECRET_KEY": secrets.token_urlsafe(64),
        "RENKEI_ALLOWED_HOSTS": "renkei.example.jp",
        **overrides,
    }


def test_production_profile_passes_the_deployment_checklist(tmp_path):
    result = renkei("check", "--deploy", "--fail-level", "WARNING", data_dir=tmp_path, **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_redirects_to_https_except_the_load_balancer_probe(tmp_path):
    script = (
        "import json\n"
        "from django.test import Client\n"
        "client = Client(HTTP_HOST='renkei.example.jp')\n"
        "plain_probe = client.get('/healthz')\n"
        "plain_login = client.get('/accounts/login/')\n"
        "secure_probe = client.get('/healthz', secure=True)\n"
        "print(json.dumps([plain_probe.status_code, plain_login.status_code, plain_login.get('Location'),\n"
        "                  secure_probe.get('Strict-Transport-Security')]))\n"
    )
    result = renkei("shell", "--no-imports", "-c", script, data_dir=tmp_path, **production_env())
    assert result.returncode == 0, result.stderr
    probe, login, location, hsts = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe == 200
    assert (login, location) == (301, "https://renkei.example.jp/accounts/login/")
    assert hsts == "max-age=31536000; includeSubDomains; preload"


def test_embedded_profile_is_what_the_deployment_checklist_warns_about(tmp_path):
    # The converse proves the check above has teeth: without the production profile, HSTS, secure
    # cookies and HTTPS redirection are off and `check --deploy` says so.
    result = renkei("check", "--deploy", "--fail-level", "WARNING", data_dir=tmp_path)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_production_without_secret_key_stops_with_a_readable_error(tmp_path):
    env = production_env()
    del env["RENKEI_SECRET_KEY"]
    result = renkei("check", data_dir=tmp_path, **env)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: RENKEI_ENV=production needs")
    assert "RENKEI_SECRET_KEY" in last_line
    assert "KeyError" not in result.stderr
    assert not (tmp_path / "secret_key").exists(), "production must never fall back to a generated key"


def test_production_without_allowed_hosts_stops_with_a_readable_error(tmp_path):
    env = production_env()
    del env["RENKEI_ALLOWED_HOSTS"]
    result = renkei("check", data_dir=tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured: RENKEI_ENV=production needs RENKEI_ALLOWED_HOSTS" in result.stderr


def test_embedded_mode_generates_a_private_secret_key_once_and_keeps_it(tmp_path):
    first = effective_settings(tmp_path)
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first["secret_key"] == key_file.read_text().strip()
    assert len(first["secret_key"]) >= 50

    second = effective_settings(tmp_path)
    assert second["secret_key"] == first["secret_key"]
    assert sorted(path.name for path in tmp_path.glob("*secret_key*")) == ["secret_key"]


def test_an_explicit_secret_key_wins_and_nothing_is_written(tmp_path):
    configured = effective_settings(tmp_path, RENKEI_SECRET_KEY="k" * 60)
    assert configured["secret_key"] == "k" * 60
    assert not (tmp_path / "secret_key").exists()


def test_default_database_is_sqlite_in_the_data_directory_tuned_for_concurrency(tmp_path):
    configured = effective_settings(tmp_path)
    assert configured["engine"] == "django.db.backends.sqlite3"
    assert Path(configured["name"]) == tmp_path / "renkei.sqlite3"
    assert configured["options"]["transaction_mode"] == "IMMEDIATE"
    assert configured["hosts"] == ["127.0.0.1", "localhost", "[::1]"]


def test_mail_goes_to_files_in_the_data_directory_until_a_server_is_named(tmp_path):
    configured = effective_settings(tmp_path)
    assert configured["email_backend"] == "django.core.mail.backends.filebased.EmailBackend"
    assert Path(configured["email_file_path"]) == tmp_path / "mail"
    named = effective_settings(tmp_path, RENKEI_EMAIL_HOST="smtp.example.jp")
    assert named["email_backend"] == "django.core.mail.backends.smtp.EmailBackend"
    production = effective_settings(tmp_path, **production_env())
    assert production["email_backend"] == "django.core.mail.backends.smtp.EmailBackend"


def test_database_url_selects_postgresql(tmp_path):
    configured = effective_settings(tmp_path, DATABASE_URL="postgres://renkei@db.internal:5432/renkei")
    assert configured["engine"] == "django.db.backends.postgresql"
    assert configured["name"] == "renkei"
    assert configured["host"] == "db.internal"
    assert "init_command" not in configured["options"]


def test_sqlite_connections_use_wal_a_busy_timeout_and_immediate_writes(tmp_path):
    # Checked on a real connection in a fresh process, whatever database this test run uses.
    script = (
        "import json, sqlite3\n"
        "from django.db import connection, transaction\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('PRAGMA journal_mode'); journal_mode = cursor.fetchone()[0]\n"
        "    cursor.execute('PRAGMA busy_timeout'); busy_timeout = cursor.fetchone()[0]\n"
        "with transaction.atomic():\n"
        "    other = sqlite3.connect(connection.settings_dict['NAME'], timeout=0)\n"
        "    try:\n"
        "        other.execute('BEGIN IMMEDIATE'); write_lock_taken_at_begin = False\n"
        "    except sqlite3.OperationalError:\n"
        "        write_lock_taken_at_begin = True\n"
        "    other.close()\n"
        "print(json.dumps([journal_mode, busy_timeout, write_lock_taken_at_begin]))\n"
    )
    result = renkei("shell", "--no-imports", "-c", script, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    journal_mode, busy_timeout, write_lock_taken_at_begin = json.loads(result.stdout.strip().splitlines()[-1])
    assert journal_mode == "wal"
    assert busy_timeout == 30000
    # An atomic block holds the write lock from BEGIN, so a second writer waits instead of failing
    # later with "database is locked" when it would upgrade from a read lock.
    assert write_lock_taken_at_begin
