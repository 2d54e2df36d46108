"""What Renkei's own management commands share: errors people can read, tables, JSON for scripts."""

import datetime as dt
import json
import unicodedata
from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils import timezone


def command_error(error: ValidationError) -> CommandError:
    """A CommandError carrying the validation messages as plain lines, not a Python repr."""
    return CommandError("\n".join(str(message) for message in error.messages))


def write_json(stdout, document) -> None:
    """One JSON document on stdout; Japanese stays readable."""
    stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str))


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def local(value: dt.datetime | None) -> str:
    """A datetime as people in Japan read it (Asia/Tokyo), or a dash."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


def _width(text: str) -> int:
    # Japanese characters take two columns in a terminal.
    return sum(2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in text)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table whose columns line up even with Japanese text."""
    cells = [[str(header) for header in headers]] + [
        ["" if c is None else str(c) for c in row] for row in rows
    ]
    widths = [max(_width(row[column]) for row in cells) for column in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths).rstrip())
    return "\n".join(lines)
