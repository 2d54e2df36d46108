from django_tasks import task


@task()
def stix_sightings_index(collection_id: str, added: str) -> int:
    """Index for correlation the observables of the objects one import stored (queued with them,
    run by the worker so that an import of tens of thousands of objects is not held up by it)."""
    from renkei.interop.services import index_stored_objects

    return index_stored_objects(collection_id, added)
