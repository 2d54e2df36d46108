"""The `renkei` console command and the embedded run, exercised as a person would: in real processes."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .smtp import free_port, smtp_server

RENKEI = shutil.which("renkei", path=str(Path(sys.executable).parent)) or "renkei"
STARTUP_TIMEOUT = 120


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A fresh machine's environment: no DATABASE_URL, so the embedded run uses its own SQLite file."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(data_dir),
        "PYTHONUTF8": "1",
        "RENKEI_DATA_DIR": str(data_dir),
        **extra,
    }


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


@pytest.mark.parametrize("command", [[RENKEI], [sys.executable, "-m", "renkei"]], ids=["renkei", "python-m"])
def test_console_command_lists_django_and_renkei_commands(command, tmp_path):
    result = subprocess.run(
        [*command, "--help"], env=clean_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Type 'renkei help <subcommand>'" in result.stdout
    for subcommand in ("migrate", "createsuperuser", "up", "worker"):
        assert re.search(rf"^\s+{subcommand}$", result.stdout, re.MULTILINE), subcommand


def wait_for_http(url: str, process: subprocess.Popen, log: Path, **headers: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited early:\n{log.read_text()}"
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"{url} did not answer within {STARTUP_TIMEOUT}s:\n{log.read_text()}")


def test_the_documented_production_deployment_serves_through_gunicorn(tmp_path):
    """README's deployment: production profile, collectstatic, gunicorn behind a TLS proxy."""
    env = clean_env(
        tmp_path,
        RENKEI_ENV="production",
        RENKEI_SECRET_KEY="production-test-" + "x" * 50,
        RENKEI_ALLOWED_HOSTS="renkei.example.jp",
    )
    for command in (["migrate", "-v", "0"], ["collectstatic", "--no-input", "-v", "0"]):
        subprocess.run([RENKEI, *command], env=env, cwd=tmp_path, check=True, timeout=120)
    assert (tmp_path / "static" / "staticfiles.json").exists()

    port = free_port()
    log = tmp_path / "gunicorn.log"
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    with log.open("w") as output:
        server = subprocess.Popen(
            [gunicorn, "renkei.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            proxied = {"Host": "renkei.example.jp", "X-Forwarded-Proto": "https"}
            wait_for_http(f"{base}/healthz", server, log, Host="renkei.example.jp")

            # The load balancer's plain-HTTP probe is answered, not redirected.
            probe = urllib.request.urlopen(
                urllib.request.Request(f"{base}/healthz", headers={"Host": "renkei.example.jp"}), timeout=10
            )
            assert probe.status == 200

            page = urllib.request.urlopen(urllib.request.Request(f"{base}/accounts/login/", headers=proxied))
            assert page.status == 200
            assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
            assert page.headers["X-Frame-Options"] == "DENY"
            assert "Secure" in page.headers["Set-Cookie"]
            stylesheets = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', page.read().decode())
            assert stylesheets
            for href in stylesheets:
                # Collected, fingerprinted names, served by WhiteNoise with a long cache lifetime.
                assert re.search(r"\.[0-9a-f]{12}\.css$", href), href
                css = urllib.request.urlopen(urllib.request.Request(base + href, headers=proxied))
                assert css.status == 200
                assert "immutable" in css.headers["Cache-Control"]
        finally:
            server.terminate()
            server.wait(timeout=60)


def test_a_server_worker_loads_every_view_before_its_first_request(tmp_path):
    """Gunicorn's workers import the WSGI module before they accept connections; the URLconf (every
    view, the API's schemas) must be loaded by then, not by whichever request comes first."""
    modules = "'renkei.urls', 'renkei.interop.taxii'"
    loaded = f"import sys, renkei.wsgi; print(*(name in sys.modules for name in ({modules})))"
    result = subprocess.run(
        [sys.executable, "-c", loaded], env=clean_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_up_reports_a_busy_port_before_touching_the_database(tmp_path):
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = subprocess.run(
            [RENKEI, "up", "--no-demo", "--port", str(port)],
            env=clean_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Address already in use" in result.stderr
    assert not (tmp_path / "renkei.sqlite3").exists()


class EmbeddedRun:
    """`renkei up` in a child process, with its output kept in a file for the failure message."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str]):
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "up.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [RENKEI, "up", "--no-demo", "--port", str(port), "--threads", "4"],
            env=env,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"renkei up exited early:\n{self.output()}"
            try:
                if fetch(f"{self.base_url}/healthz")[0] == 200:
                    return
            except OSError:
                pass  # not listening yet: still migrating
            time.sleep(0.25)
        raise AssertionError(f"renkei up did not answer /healthz within {STARTUP_TIMEOUT}s:\n{self.output()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def test_up_serves_pages_static_files_and_runs_tasks_in_process(tmp_path):
    port = free_port()
    with smtp_server() as (inbox, smtp_port):
        env = clean_env(
            tmp_path,
            RENKEI_EMAIL_HOST="127.0.0.1",
            RENKEI_EMAIL_PORT=str(smtp_port),
            RENKEI_EMAIL_FROM="renkei@renkei.example.jp",
        )
        run = EmbeddedRun(tmp_path, port, env)
        try:
            run.wait_until_healthy()
            assert (tmp_path / "renkei.sqlite3").exists()

            status, _type, body = fetch(f"{run.base_url}/healthz")
            assert (status, body) == (200, b"ok")

            status, content_type, page = fetch(f"{run.base_url}/accounts/login/")
            assert status == 200
            assert content_type.startswith("text/html")
            # Static files come straight from the package (no collectstatic in the embedded run).
            stylesheets = re.findall(rb'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', page)
            assert stylesheets, "the login page links no stylesheet"
            for href in stylesheets:
                status, content_type, css = fetch(run.base_url + href.decode())
                assert status == 200, href
                assert content_type.startswith("text/css"), href
                assert css.strip()

            # Another process queues a welcome e-mail; the worker inside `renkei up` must send it.
            officer = "smoke-officer --org 金融庁 --role officer --email smoke-officer@fsa.example.jp"
            subprocess.run(
                [RENKEI, "user", "add", *officer.split()],
                env=env,
                cwd=tmp_path,
                check=True,
                capture_output=True,
                timeout=60,
            )
            [delivery] = inbox.wait_for(1, timeout=60)
            assert delivery.recipients == ["smoke-officer@fsa.example.jp"]
        finally:
            returncode = run.stop()

    output = run.output()
    assert returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output
