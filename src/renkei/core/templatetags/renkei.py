"""Small presentation helpers for Renkei's templates."""

import math
from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def minutes(duration: timedelta | None) -> int:
    """Whole minutes in a duration, rounded up, so a wait is never understated."""
    if duration is None:
        return 0
    return math.ceil(duration.total_seconds() / 60)
