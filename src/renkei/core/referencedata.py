"""Every app's reference data, loaded in dependency order (sectors before the regimes that name them)."""

from django.db import transaction

from renkei.directory.services import reference_data_load
from renkei.sharing.services import sharing_reference_data_load
from renkei.situations.services import situations_reference_data_load


@transaction.atomic
def all_reference_data_load(*, actor=None) -> dict[str, int]:
    """Create whatever reference rows are missing; rows administrators edited are left alone."""
    return (
        reference_data_load(actor=actor)
        | sharing_reference_data_load(actor=actor)
        | situations_reference_data_load(actor=actor)
    )
