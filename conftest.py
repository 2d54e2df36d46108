"""Fixtures shared by every app's tests."""

import pytest
from django.conf import settings
from django.utils import translation

from renkei.core.reference_cache import reference_cache_clear
from renkei.core.referencedata import all_reference_data_load
from renkei.core.tests.loopback import loopback_allowed  # noqa: F401 (a fixture)
from renkei.core.tests.smtp import smtp_server
from renkei.core.tests.worker import run_worker_until_idle
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization, Sector
from renkei.directory.tests.factories import ContactRouteFactory, OrganizationFactory, member


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 is deliberately slow; tests hash thousands of passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _reference_cache_cleared():
    # Rolling a test's transaction back sends no signals, so the next test would see its rows.
    reference_cache_clear()
    yield
    reference_cache_clear()


@pytest.fixture
def reference_data(db):
    """The real Japanese CIP structure (15 sectors, ministries, CEPTOARs, the national centre), the cause
    taxonomy and the deadline profiles."""
    all_reference_data_load()


@pytest.fixture
def community(reference_data):
    """A small community on the reference data, with one user per interesting position.

    Returns a namespace: national centre coordinator, FSA (finance ministry) coordinator,
    MHLW (medical) coordinator, two banks with a CEPTOAR parent, a hospital, and their people.
    """

    class Community:
        pass

    c = Community()
    c.finance = Sector.objects.get(code="finance")
    c.medical = Sector.objects.get(code="medical")
    c.nisc = Organization.objects.get(type=OrganizationType.NATIONAL_CENTER)
    c.fsa = Organization.objects.get(name_ja="金融庁")
    c.mhlw = Organization.objects.get(name_ja="厚生労働省")
    c.bank_ceptoar = Organization.objects.get(name_ja="銀行等セプター")
    c.bank_a = OrganizationFactory(
        name_ja="さくら銀行", name_en="Sakura Bank", sectors=[c.finance], parent=c.bank_ceptoar, size="large"
    )
    c.bank_b = OrganizationFactory(
        name_ja="もみじ銀行", name_en="Momiji Bank", sectors=[c.finance], parent=c.bank_ceptoar, size="sme"
    )
    c.hospital = OrganizationFactory(
        name_ja="みどり病院", name_en="Midori Hospital", sectors=[c.medical], size="sme"
    )
    for org in (c.bank_a, c.bank_b, c.hospital, c.nisc, c.fsa):
        ContactRouteFactory(organization=org, kind="email")
        ContactRouteFactory(organization=org, kind="phone", value="03-0000-0000")
    c.nisc_coordinator = member(c.nisc, Role.COORDINATOR, "nisc_coord")
    c.fsa_coordinator = member(c.fsa, Role.COORDINATOR, "fsa_coord")
    c.mhlw_coordinator = member(c.mhlw, Role.COORDINATOR, "mhlw_coord")
    c.ceptoar_officer = member(c.bank_ceptoar, Role.OFFICER, "bank_ceptoar_officer")
    c.bank_a_reporter = member(c.bank_a, Role.REPORTER, "bank_a_reporter")
    c.bank_a_admin = member(c.bank_a, Role.ORG_ADMIN, "bank_a_admin")
    c.bank_b_reporter = member(c.bank_b, Role.REPORTER, "bank_b_reporter")
    c.hospital_reporter = member(c.hospital, Role.REPORTER, "hospital_reporter")
    return c


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the installation's language, whatever an earlier test switched to."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def inbox(transactional_db, settings):
    """A real SMTP server on 127.0.0.1 that Renkei sends to; its deliveries, parsed."""
    with smtp_server() as (deliveries, port):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        settings.DEFAULT_FROM_EMAIL = "renkei@renkei.example.jp"
        settings.RENKEI_BASE_URL = "https://renkei.example.jp"
        yield deliveries


@pytest.fixture
def run_worker():
    """`renkei worker --batch`, as a function to call when the test wants the queue worked off."""
    return run_worker_until_idle
