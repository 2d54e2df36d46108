"""The after-action report, as a page and as a PDF whose Japanese is drawn with real glyphs.

The PDF is rendered to an image (pdfium) and each checked character cut out of it is compared with
the same character drawn by Pillow from the font file: a missing glyph renders blank, a fallback
renders the same box for every character, and both fail here."""

import logging

import pypdfium2
import pytest
from PIL import Image, ImageDraw, ImageFont
from pylopdf_fonts_jp import sans_path

from renkei.sharing.tests.test_views import signed_in
from renkei.situations import services
from renkei.situations.after_action import after_action_context, after_action_pdf
from renkei.situations.choices import DecisionKind
from renkei.situations.tests.test_services import active

pytestmark = pytest.mark.django_db
SCALE = 6  # pixels per PDF point
INK_GRID = 24


def ended(c):
    situation = active(c)
    services.finding_add(actor=c.nisc_coordinator, situation=situation, text="連絡網の一部が古かった")
    services.decision_request(
        actor=c.nisc_coordinator, situation=situation, kind=DecisionKind.END, reason="収束"
    )
    return services.decision_approve(actor=c.nisc_coordinator_2, situation=situation)


def ink(image: Image.Image) -> list[float] | None:
    """The image's inked part, scaled to a small grid of darkness values; None when blank."""
    grey = image.convert("L")
    box = grey.point(lambda value: 255 if value < 128 else 0).getbbox()
    if box is None:
        return None
    small = grey.crop(box).resize((INK_GRID, INK_GRID), Image.Resampling.BOX)
    return [1 - value / 255 for value in small.get_flattened_data()]


def correlation(first: list[float], second: list[float]) -> float:
    mean_a, mean_b = sum(first) / len(first), sum(second) / len(second)
    covariance = sum((a - mean_a) * (b - mean_b) for a, b in zip(first, second, strict=True))
    spread_a = sum((a - mean_a) ** 2 for a in first) ** 0.5
    spread_b = sum((b - mean_b) ** 2 for b in second) ** 0.5
    return covariance / (spread_a * spread_b)


def drawn_in_pdf(document: bytes, characters: str) -> dict[str, list[float] | None]:
    page = pypdfium2.PdfDocument(document)[0]
    height = page.get_height()
    picture = page.render(scale=SCALE).to_pil()
    text_page = page.get_textpage()
    text = text_page.get_text_range()
    found = {}
    for character in characters:
        left, bottom, right, top = text_page.get_charbox(text.index(character))
        pad = 0.5
        found[character] = ink(
            picture.crop(
                (
                    int((left - pad) * SCALE),
                    int((height - top - pad) * SCALE),
                    int((right + pad) * SCALE) + 1,
                    int((height - bottom + pad) * SCALE) + 1,
                )
            )
        )
    return found


def drawn_by_font(character: str) -> list[float]:
    font = ImageFont.truetype(str(sans_path()), 64)
    canvas = Image.new("L", (128, 128), 255)
    ImageDraw.Draw(canvas).text((32, 32), character, font=font, fill=0)
    return ink(canvas)


def test_the_japanese_pdf_draws_real_glyphs(crisis, caplog):
    situation = ended(crisis)
    with caplog.at_level(logging.WARNING, logger="fpdf"):
        document = after_action_pdf(after_action_context(situation, crisis.nisc_coordinator))
    assert not [r for r in caplog.records if "missing" in r.getMessage()], "fpdf2 dropped glyphs"
    assert document.startswith(b"%PDF")
    text = pypdfium2.PdfDocument(document)[0].get_textpage().get_text_range()
    assert "事後報告" in text or "After-action report" in text
    assert situation.title in text.replace("\r\n", "")
    shapes = drawn_in_pdf(document, "攻撃")
    for character, shape in shapes.items():
        assert shape is not None, f"{character} is blank"
        assert correlation(shape, drawn_by_font(character)) > 0.7, f"{character} is not the font's glyph"
    assert correlation(shapes["攻"], shapes["撃"]) < 0.6, "two characters drawn alike: tofu boxes"


def test_the_report_in_english_as_page_and_pdf(crisis):
    situation = ended(crisis)
    coordinator = signed_in(crisis.nisc_coordinator, language="ja")
    page = coordinator.get(f"/situations/{situation.pk}/after-action/?lang=en")
    assert page.status_code == 200
    html = page.content.decode()
    assert "After-action report" in html and "連絡網の一部が古かった" in html
    assert "Proposal to declaration in force" in html
    download = coordinator.get(f"/situations/{situation.pk}/after-action.pdf?lang=en")
    assert download["Content-Type"] == "application/pdf"
    assert "attachment" in download["Content-Disposition"]
    text = pypdfium2.PdfDocument(download.content)[0].get_textpage().get_text_range()
    assert "After-action report" in text and "Metrics" in text


def test_findings_come_from_the_national_centre(crisis):
    situation = ended(crisis)
    assert (
        signed_in(crisis.nisc_analyst)
        .post(f"/situations/{situation.pk}/findings/", {"text": "演習で確認する"})
        .status_code
        == 302
    )
    assert situation.findings.count() == 2
    assert (
        signed_in(crisis.police_officer)
        .post(f"/situations/{situation.pk}/findings/", {"text": "x"})
        .status_code
        == 404
    ), "the police left the ended situation's room"
