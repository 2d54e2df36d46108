from django.db import migrations

# Every organization except the public gets its own submissions collection; new ones get it on creation.
EXCLUDED_TYPES = ("public",)


def create_submissions_collections(apps, schema_editor):
    Organization = apps.get_model("directory", "Organization")
    Collection = apps.get_model("interop", "Collection")
    having = Collection.objects.filter(is_submissions=True).values("owner_id")
    Collection.objects.bulk_create(
        Collection(
            owner=organization,
            audience="chain",
            is_submissions=True,
        )
        for organization in Organization.objects.exclude(type__in=EXCLUDED_TYPES).exclude(pk__in=having)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("interop", "0001_initial"),
        ("directory", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_submissions_collections, migrations.RunPython.noop)]
