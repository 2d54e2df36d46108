"""Japanese first, English by choice; and a Japanese catalogue that is complete and compiled."""

import os
import re
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from renkei.audit.models import AuditRecord

LOCALE_DIR = Path(settings.LOCALE_PATHS[0])
JA_PO = LOCALE_DIR / "ja" / "LC_MESSAGES" / "django.po"
JA_MO = LOCALE_DIR / "ja" / "LC_MESSAGES" / "django.mo"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def login_page(client) -> str:
    return client.get(reverse("login")).content.decode()


# --- Choosing the language --------------------------------------------------------------------------


def test_login_page_is_japanese_by_default_whatever_the_browser_prefers(db):
    html = Client(headers={"Accept-Language": "en-US,en;q=0.9"}).get(reverse("login")).content.decode()
    assert '<html lang="ja">' in html
    assert "Renkeiにログイン" in html
    assert "パスワード" in html  # Django's own catalogue translates the form's labels


def test_login_page_is_english_when_chosen_by_cookie(db):
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = login_page(client)
    assert '<html lang="en">' in html
    assert "Log in to Renkei" in html


def test_switching_language_on_the_login_page(db):
    client = Client()
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert "Log in to Renkei" in login_page(client)

    client.post(reverse("set_language"), {"language": "ja", "next": reverse("login")})
    assert "Renkeiにログイン" in login_page(client)


def test_switching_language_signed_in_saves_it_to_the_account(community):
    user = community.bank_a_reporter
    client = Client()
    client.force_login(user)
    client.post(reverse("set_language"), {"language": "en", "next": reverse("home")})
    user.refresh_from_db()
    assert user.language == "en"
    assert AuditRecord.objects.filter(
        object_type="directory.user", object_id=str(user.pk), after={"language": "en"}
    ).exists()

    # A new session on another device, without the cookie, is still in English.
    elsewhere = Client()
    elsewhere.force_login(user)
    html = elsewhere.get(reverse("home")).content.decode()
    assert '<html lang="en">' in html
    assert "Your organizations and roles" in html


def test_the_saved_preference_wins_over_the_cookie(community):
    user = community.bank_a_reporter
    user.language = "en"
    user.save(update_fields=["language"])
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    client.force_login(user)
    assert '<html lang="en">' in client.get(reverse("home")).content.decode()


def test_language_switch_ignores_unknown_languages_and_foreign_redirects(db):
    client = Client()
    response = client.post(reverse("set_language"), {"language": "xx", "next": "https://evil.example/"})
    assert response["Location"] == reverse("login")
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
    assert '<html lang="ja">' in login_page(client)


def test_language_switch_needs_post(db):
    assert Client().get(reverse("set_language")).status_code == 405


def test_choices_and_model_labels_follow_the_language(community):
    client = Client()
    client.force_login(community.hospital_reporter)
    url = reverse("directory:organization_detail", kwargs={"pk": community.bank_a.pk})
    assert "重要インフラ事業者" in client.get(url).content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": url})
    html = client.get(url).content.decode()
    assert "Critical-infrastructure operator" in html
    assert "Sakura Bank" in html


# --- The catalogue ----------------------------------------------------------------------------------


def _live_entries(catalogue):
    return [entry for entry in catalogue if not entry.obsolete]


def test_japanese_catalogue_is_complete():
    catalogue = polib.pofile(str(JA_PO))
    assert not catalogue.metadata_is_fuzzy
    entries = _live_entries(catalogue)
    assert entries
    untranslated = [entry.msgid for entry in entries if not entry.translated()]
    fuzzy = [entry.msgid for entry in entries if "fuzzy" in entry.flags]
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy: {fuzzy}"
    for entry in entries:
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert sorted(PLACEHOLDER.findall(entry.msgid)) == sorted(PLACEHOLDER.findall(text)), entry.msgid


def test_compiled_catalogue_matches_the_po_file():
    """The .mo Django reads holds exactly what the .po says (i.e. compilemessages was run)."""

    def as_dict(catalogue):
        result = {}
        for entry in _live_entries(catalogue):
            if entry.msgid_plural:
                result[(entry.msgid, entry.msgid_plural)] = tuple(sorted(entry.msgstr_plural.items()))
            elif entry.msgstr:
                result[entry.msgid] = entry.msgstr
        return result

    source = polib.pofile(str(JA_PO))
    compiled = polib.mofile(str(JA_MO))
    assert as_dict(compiled) == as_dict(source)


def test_catalogue_contains_every_string_in_the_code(tmp_path):
    """Extract the messages afresh (as `makemessages` does) and compare with the committed catalogue,
    so a string added without updating the translations fails here, not in front of users."""
    if shutil.which("xgettext") is None:
        pytest.fail("xgettext is missing: apt-get install gettext")
    package = Path(settings.LOCALE_PATHS[0]).parent
    copy = tmp_path / "renkei"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "locale", "tests"))
    fresh_locale = copy / "locale"
    fresh_locale.mkdir()
    cwd = os.getcwd()
    os.chdir(copy)
    try:
        with override_settings(LOCALE_PATHS=[fresh_locale]):
            call_command("makemessages", locale=["ja"], verbosity=0)
    finally:
        os.chdir(cwd)
    extracted = {
        entry.msgid for entry in polib.pofile(str(fresh_locale / "ja" / "LC_MESSAGES" / "django.po"))
    }
    committed = {entry.msgid for entry in _live_entries(polib.pofile(str(JA_PO)))}
    missing = sorted(extracted - committed)
    assert not missing, f"run makemessages and translate: {missing}"
