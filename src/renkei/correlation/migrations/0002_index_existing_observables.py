from collections import Counter

from django.core.exceptions import ValidationError
from django.db import migrations

from renkei.correlation.indicators import indicator

BATCH = 2000


def index_existing_observables(apps, schema_editor):
    """Sightings for the observables of every report, advisory and anonymized copy stored so far."""
    Sighting = apps.get_model("correlation", "Sighting")
    CorrelationKey = apps.get_model("correlation", "CorrelationKey")
    held = [
        ("report", apps.get_model("sharing", "Observable").objects.values_list("version__report_id", "type", "value")),
        ("advisory", apps.get_model("sharing", "AdvisoryObservable").objects.values_list("advisory_id", "type", "value")),
        ("anonymized", apps.get_model("sharing", "AnonymizedObservable").objects.values_list("copy_id", "type", "value")),
    ]
    indexed, counts, distinct, batch = set(), Counter(), {}, []
    for kind, rows in held:
        for source_id, observable_type, value in rows.order_by().iterator(chunk_size=BATCH):
            try:
                found = indicator(observable_type, value)
            except ValidationError:
                continue
            if (kind, str(source_id), found.key) in indexed:
                continue
            indexed.add((kind, str(source_id), found.key))
            counts[found.key] += 1
            distinct.setdefault(found.key, found)
            batch.append(
                Sighting(source_kind=kind, source_id=str(source_id), key=found.key, type=found.type, value=found.value)
            )
            if len(batch) >= BATCH:
                Sighting.objects.bulk_create(batch)
                batch = []
    Sighting.objects.bulk_create(batch)
    CorrelationKey.objects.bulk_create(
        (
            CorrelationKey(key=key, type=f.type, ip_low=f.ip_low, ip_high=f.ip_high, source_count=counts[key])
            for key, f in distinct.items()
        ),
        batch_size=BATCH,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("correlation", "0001_sightings_and_keys"),
        ("sharing", "0007_grant_indexes_cover_visibility"),
    ]

    operations = [migrations.RunPython(index_existing_observables, migrations.RunPython.noop)]
