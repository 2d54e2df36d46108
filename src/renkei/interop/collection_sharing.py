"""The TLP label and audience of a collection that its owner chose (a feed's, or a shared collection),
checked and applied the same way for both. Submissions collections follow the mandated chain instead."""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from renkei.core.access import principal_for
from renkei.directory.choices import OrganizationType
from renkei.directory.models import Organization, Sector, User
from renkei.interop.models import FEED_ADMIN_ROLES, Collection, CollectionAudience, CollectionAudienceEntry
from renkei.sharing.choices import Tlp


@dataclass(kw_only=True)
class Sharing:
    tlp: str = Tlp.AMBER
    audience: str = CollectionAudience.CHAIN
    # Used when audience is NAMED: everyone matching one of them may read the objects.
    all_ci: bool = False
    sectors: list[Sector] = field(default_factory=list)
    organization_types: list[str] = field(default_factory=list)


def check(condition: bool, message: str, field_name: str) -> None:
    if not condition:
        raise ValidationError({field_name: message})


def sharing_check(data: Sharing) -> None:
    check(data.tlp in Tlp.values, _("Unknown TLP label %(tlp)s.") % {"tlp": data.tlp}, "tlp")
    check(data.audience in CollectionAudience.values, _("Choose an audience."), "audience")
    if data.audience != CollectionAudience.NAMED:
        return
    check(
        data.all_ci or bool(data.sectors) or bool(data.organization_types),
        _("Name who may read the objects."),
        "audience",
    )
    unknown = set(data.organization_types) - set(OrganizationType.values)
    check(not unknown, _("Unknown organization type."), "organization_types")
    # The label is the ceiling on the audience (PRODUCT.md, "Access control").
    check(
        data.tlp not in (Tlp.RED, Tlp.AMBER_STRICT),
        _("TLP:RED and TLP:AMBER+STRICT objects never go to whole groups; choose the mandated chain."),
        "tlp",
    )
    check(
        data.tlp == Tlp.CLEAR or OrganizationType.PUBLIC not in data.organization_types,
        _("Only TLP:CLEAR may reach outside the critical-infrastructure community."),
        "organization_types",
    )


def administered_organizations(user):
    """The organizations whose collections and feeds the user manages."""
    return Organization.objects.filter(pk__in=principal_for(user).org_ids_with_role(*FEED_ADMIN_ROLES))


def check_administrator(actor: User, owner: Organization) -> None:
    """Only the owner's officers and administrators choose what its collections and feeds share."""
    if not principal_for(actor).has_role(*FEED_ADMIN_ROLES, org_id=owner.pk):
        raise ValidationError(
            _("Only the organization's officers and administrators may manage its collections and feeds."),
            code="forbidden",
        )


def sharing_apply(collection: Collection, data: Sharing) -> None:
    """Give the (saved) collection the label and audience; what it holds is shared that way at once."""
    collection.tlp, collection.audience = data.tlp, data.audience
    collection.save(update_fields=["tlp", "audience"])
    collection.audience_entries.all().delete()
    if data.audience != CollectionAudience.NAMED:
        return
    entries = [CollectionAudienceEntry(collection=collection, all_ci=True)] if data.all_ci else []
    entries += [CollectionAudienceEntry(collection=collection, sector=sector) for sector in data.sectors]
    entries += [
        CollectionAudienceEntry(collection=collection, organization_type=kind)
        for kind in dict.fromkeys(data.organization_types)
    ]
    CollectionAudienceEntry.objects.bulk_create(entries)


def sharing_of(collection: Collection) -> dict:
    """The collection's label and audience, as keyword arguments of a Sharing."""
    entries = list(collection.audience_entries.select_related("sector"))
    return {
        "tlp": collection.tlp,
        "audience": collection.audience,
        "all_ci": any(entry.all_ci for entry in entries),
        "sectors": [entry.sector for entry in entries if entry.sector_id],
        "organization_types": [entry.organization_type for entry in entries if entry.organization_type],
    }


def sharing_snapshot(collection: Collection) -> dict:
    """The label and audience as the audit trail records them."""
    return {
        "tlp": collection.tlp,
        "audience": collection.audience,
        "audience_entries": [str(entry) for entry in collection.audience_entries.all()],
    }
