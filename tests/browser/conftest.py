"""Browser tests: Debian's Chromium, driven by Playwright's sync API, against pytest-django's live server.

Every page a test visits goes through `Visitor.checkpoint`, which saves a full-page screenshot to
test-artifacts/screenshots/, runs axe-core on it (no serious or critical violations), and checks
that the page made no request to another host and logged no error (a CSP violation is one).
A failing test also leaves a screenshot of where it stopped.
"""

import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from playwright.sync_api import Page, sync_playwright

from renkei.directory.demo import DEMO_PASSWORD

# Sync Playwright keeps an asyncio loop running in this thread; Django would otherwise refuse ORM
# calls from the test body (demo data, TOTP keys) as if they came from async code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
BLOCKING_IMPACTS = ("serious", "critical")
# Kanji, hiragana, katakana and full-width forms: the characters a missing Japanese font turns into boxes.
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
# A private-use code point of plane 16: no font has a glyph for it, so Chromium draws its
# missing-glyph box ("tofu"), exactly what it draws for Japanese when no Japanese font is installed.
NO_GLYPH = "\U0010fffd"

_report_key = pytest.StashKey[dict]()
_axe = Axe()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(_report_key, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; install it with: apt-get install chromium fonts-noto-cjk")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def demo(transactional_db):
    """The documented demo community (`renkei demo`), as a newcomer gets it."""
    call_command("demo", verbosity=0)


class Visitor:
    """One browser tab, and the checks every visited page must pass."""

    def __init__(self, page: Page, base_url: str, name: str, javascript: bool = True):
        self.page = page
        self.base_url = base_url
        self.name = name
        self.javascript = javascript
        self.count = 0
        self.foreign_requests: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def _on_request(self, request) -> None:
        url = request.url
        if not (url.startswith(self.base_url) or url.startswith(("data:", "about:", "blob:"))):
            self.foreign_requests.append(url)

    def _on_response(self, response) -> None:
        # A page may answer 404 or 429 on purpose; the files it loads must not fail.
        if response.request.resource_type != "document" and response.status >= 400:
            self.console_errors.append(f"{response.status} {response.url}")

    def _on_console(self, message) -> None:
        # HTTP failures are judged above, per resource; the console only repeats them.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.console_errors.append(message.text)

    def open(self, path: str, label: str) -> None:
        self.page.goto(self.base_url + path)
        self.checkpoint(label)

    def login(self, username: str, password: str = DEMO_PASSWORD) -> None:
        self.page.get_by_label(re.compile("ユーザー名|Username")).fill(username)
        self.page.get_by_label(re.compile("パスワード|Password")).fill(password)
        self.page.get_by_role("button", name=re.compile("^(ログイン|Log in)$")).click()
        self.page.wait_for_load_state()

    def screenshot(self, label: str) -> Path:
        self.count += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}--{self.count:02d}-{label}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def checkpoint(self, label: str) -> None:
        """Screenshot the page, then hold it to the rules every page must meet."""
        self.page.wait_for_load_state("networkidle")
        self.screenshot(label)
        # axe runs inside the page and waits on its timers, which never fire with JavaScript off;
        # the same pages are held to axe by the tests that browse with it.
        if self.javascript:
            results = _axe.run(self.page)
            blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]
            assert not blocking, (
                f"{label}: axe found serious or critical problems:\n{results.generate_report()}"
            )
        assert not self.foreign_requests, f"{label}: requests to other hosts: {self.foreign_requests}"
        assert not self.console_errors, f"{label}: browser errors (CSP?): {self.console_errors}"
        if self.page.locator("html").get_attribute("lang") == "ja":
            self.assert_japanese_renders()

    def assert_japanese_renders(self, selector: str = "h1") -> None:
        """The heading's Japanese is drawn with real glyphs, judged from screenshots, not the DOM.

        Three screenshots of the same heading element: as it is; with its text transparent; and with
        every Japanese character swapped for a code point no font covers. The first must differ from
        the second (something is drawn) and from the third (what is drawn is not the missing-glyph
        box Chromium uses when no Japanese font is installed: then the two would be pixel-identical).
        `document.fonts.check()` cannot tell this: it answers true for fonts that are not installed.
        """
        heading = self.page.locator(selector).first
        text = heading.inner_text()
        assert CJK.search(text), f"expected Japanese in the {selector}: {text!r}"
        rendered = heading.screenshot()
        heading.evaluate(
            "element => { element.dataset.text = element.innerHTML; element.style.color = 'transparent'; }"
        )
        blank = heading.screenshot()
        heading.evaluate(
            """(element, [pattern, missing]) => {
                element.style.color = '';
                const cjk = new RegExp(pattern, 'gu');
                const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
                while (walker.nextNode()) {
                    walker.currentNode.nodeValue = walker.currentNode.nodeValue.replace(cjk, missing);
                }
            }""",
            [CJK.pattern, NO_GLYPH],
        )
        boxes = heading.screenshot()
        heading.evaluate(
            "element => { element.innerHTML = element.dataset.text; delete element.dataset.text; }"
        )
        assert rendered != blank, f"the {selector} {text!r} is drawn blank"
        assert rendered != boxes, (
            f"the {selector} {text!r} is drawn as missing-glyph boxes: apt-get install fonts-noto-cjk"
        )


def _visiting(request, chromium, live_server, name: str, javascript: bool = True):
    # An English-speaking browser: Renkei must still open in Japanese until someone chooses English.
    context = chromium.new_context(
        locale="en-US", viewport={"width": 1280, "height": 900}, java_script_enabled=javascript
    )
    visitor = Visitor(context.new_page(), live_server.url, name, javascript=javascript)
    yield visitor
    reports = request.node.stash.get(_report_key, {})
    if any(report.failed for report in reports.values()):
        visitor.screenshot("FAILED")
    context.close()


@pytest.fixture
def visitor(request, chromium, live_server):
    yield from _visiting(request, chromium, live_server, request.node.name)


@pytest.fixture
def visitor_without_javascript(request, chromium, live_server):
    """A browser with JavaScript turned off: every form must still work, only less quickly."""
    yield from _visiting(request, chromium, live_server, f"{request.node.name}-no-js", javascript=False)
