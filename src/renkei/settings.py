"""Renkei settings, read from the environment.

Embedded mode (the default) keeps everything — SQLite database, secret key, uploads — in one data
directory and needs no other server. `RENKEI_ENV=production` turns on the hardened profile that
passes `renkei check --deploy --fail-level WARNING`.
"""

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

PACKAGE_DIR = Path(__file__).resolve().parent
ENV = os.environ.get("RENKEI_ENV", "embedded")
PRODUCTION = ENV == "production"
DATA_DIR = Path(os.environ.get("RENKEI_DATA_DIR", Path.cwd() / "data")).resolve()


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _embedded_secret_key() -> str:
    """Generate the key once and keep it beside the database, so sessions survive restarts."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        # Written privately under a temporary name, then linked into place: a web process and a
        # worker starting together agree on one key, and no one ever reads a half-written file.
        draft = DATA_DIR / f".secret_key.{os.getpid()}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secrets.token_urlsafe(64))
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return key_file.read_text().strip()


def _required(name: str, purpose: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"RENKEI_ENV=production needs {name}: {purpose}")
    return value


if PRODUCTION:
    # Production must be configured explicitly; a missing value is an error, not a fallback.
    SECRET_KEY = _required(
        "RENKEI_SECRET_KEY",
        "a long random string shared by every web server and worker, e.g. from "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(64))'`.",
    )
else:
    SECRET_KEY = os.environ.get("RENKEI_SECRET_KEY") or _embedded_secret_key()

DEBUG = _env_bool("RENKEI_DEBUG", False)
ALLOWED_HOSTS = _env_list(
    "RENKEI_ALLOWED_HOSTS",
    _required("RENKEI_ALLOWED_HOSTS", "the comma-separated host names the site is served under.")
    if PRODUCTION
    else "127.0.0.1,localhost,[::1]",
)
CSRF_TRUSTED_ORIGINS = _env_list("RENKEI_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "renkei.core",
    "renkei.directory",
    "renkei.sharing",
    "renkei.correlation",
    "renkei.audit",
    "renkei.interop",
    "renkei.situations",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Serves Swagger UI's own files for /api/v1/docs, so the docs page needs no CDN.
    "ninja",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "renkei.core.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "renkei.core.middleware.UserLanguageMiddleware",
    "renkei.core.middleware.TwoFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "renkei.urls"
WSGI_APPLICATION = "renkei.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "renkei.core.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------

SQLITE_OPTIONS = {
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue on busy_timeout instead of
    # one failing with "database is locked" when it upgrades a read lock mid-transaction.
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
    "init_command": (
        "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=30000;PRAGMA foreign_keys=ON;"
    ),
}

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'renkei.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0 if DEBUG else 60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
    # One test database per test run, so two runs over one data directory do not wreck each other's.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-renkei-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication -------------------------------------------------------------------------------

AUTH_USER_MODEL = "directory.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Lock a username at one client address after repeated failures, for a cooling-off period.
AXES_FAILURE_LIMIT = int(os.environ.get("RENKEI_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("RENKEI_LOGIN_COOLOFF_HOURS", "0.25"))
# The pair, not either one: behind a proxy every client shares an address, and locking on the address
# alone would lock everyone out; locking on the username alone would let anyone lock anyone out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "core/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Behind a reverse proxy, the client's address is the last one the proxies added.
AXES_IPWARE_PROXY_COUNT = int(os.environ.get("RENKEI_TRUSTED_PROXY_COUNT", "0")) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)
AXES_VERBOSE = False

SESSION_COOKIE_AGE = int(os.environ.get("RENKEI_SESSION_HOURS", "8")) * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
OTP_TOTP_ISSUER = "Renkei"

# --- Internationalization -------------------------------------------------------------------------

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = DATA_DIR / "media"
RENKEI_ATTACHMENT_MAX_BYTES = int(os.environ.get("RENKEI_ATTACHMENT_MAX_MB", "20")) * 1024 * 1024
# A value seen in more places than this stops correlating: it says nothing any more.
RENKEI_CORRELATION_MAX_SIGHTINGS = int(os.environ.get("RENKEI_CORRELATION_MAX_SIGHTINGS", "1000"))
# Encrypts the passwords and tokens of TAXII feeds; derived from the secret key when not set.
RENKEI_FEED_KEY = os.environ.get("RENKEI_FEED_KEY", "")
# Addresses feeds and webhooks never connect to (renkei.core.outbound): loopback, "this host",
# link-local (cloud metadata) and multicast. Private ranges stay allowed for closed networks.
RENKEI_OUTBOUND_DENY = _env_list(
    "RENKEI_OUTBOUND_DENY",
    "127.0.0.0/8,0.0.0.0/8,169.254.0.0/16,224.0.0.0/4,::1/128,::/128,fe80::/10,ff00::/8",
)
for _network in RENKEI_OUTBOUND_DENY:
    ipaddress.ip_network(_network, strict=False)  # a mistyped network stops start-up, not a delivery
# Embedded mode serves straight from the package, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
if not PRODUCTION:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    # WhiteNoise warns at every start when STATIC_ROOT is missing; here an empty one is expected.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- E-mail ---------------------------------------------------------------------------------------

# Until an SMTP server is named (or in production, where one must be), mail is written to files in
# the data directory: the embedded run works on a machine without a mail server and loses nothing.
EMAIL_BACKEND = os.environ.get(
    "RENKEI_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION or "RENKEI_EMAIL_HOST" in os.environ
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = DATA_DIR / "mail"
EMAIL_HOST = os.environ.get("RENKEI_EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("RENKEI_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("RENKEI_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("RENKEI_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("RENKEI_EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = os.environ.get("RENKEI_EMAIL_FROM", "renkei@localhost")
RENKEI_BASE_URL = os.environ.get("RENKEI_BASE_URL", "http://127.0.0.1:8000")

# --- Background tasks -----------------------------------------------------------------------------

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

# --- Security headers -----------------------------------------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Every asset is served by Renkei itself: these networks are closed, and no page may call out.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)

if PRODUCTION:
    SECURE_SSL_REDIRECT = _env_bool("RENKEI_SSL_REDIRECT", True)
    # Load balancers probe over plain HTTP behind the TLS terminator; a redirect would fail them.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("RENKEI_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("RENKEI_LOG_LEVEL", "WARNING")},
}
