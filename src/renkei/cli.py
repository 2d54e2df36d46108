"""The `renkei` console command: Django's management commands plus Renkei's own."""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.settings")
    from django.core.management import execute_from_command_line

    argv = list(sys.argv if argv is None else argv)
    argv[0] = "renkei"
    execute_from_command_line(argv)
