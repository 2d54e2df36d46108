"""Reference data (sectors, cause categories, deadline profiles) that busy paths look up by code,
kept per process for a short while: every submission used to spend a round trip on each.

Only an administrator changes them, and rarely. A change saved in this process is seen at once; one
saved in another process within REFERENCE_CACHE_SECONDS. Nothing that decides access or routing is
kept here: who receives a report is always read from the database.
"""

import time
from collections.abc import Callable

from django.db.models.signals import m2m_changed, post_delete, post_save

REFERENCE_CACHE_SECONDS = 60.0

_entries: dict[tuple, tuple[float, object]] = {}


def cached_reference(key: tuple, load: Callable[[], object]):
    """`load()`'s result, kept under `key`; a missing row (None) is not kept, so unknown codes sent
    by clients neither fill the cache nor hide a row created meanwhile."""
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and now - entry[0] <= REFERENCE_CACHE_SECONDS:
        return entry[1]
    value = load()
    if value is not None:
        _entries[key] = (now, value)
    return value


def reference_cache_clear(**_signal) -> None:
    _entries.clear()


def forget_references_when_changed(*senders) -> None:
    """Clear the cache whenever one of `senders` (models, or many-to-many through models) changes."""
    for sender in senders:
        uid = f"reference-cache-{sender._meta.label_lower}"
        post_save.connect(reference_cache_clear, sender=sender, dispatch_uid=f"{uid}-save")
        post_delete.connect(reference_cache_clear, sender=sender, dispatch_uid=f"{uid}-delete")
        m2m_changed.connect(reference_cache_clear, sender=sender, dispatch_uid=f"{uid}-m2m")
