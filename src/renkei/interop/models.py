"""STIX 2.1 objects exchanged with the tools the field already uses, kept in TAXII collections.

A collection is the unit of sharing: every object in it has the collection's TLP label and audience,
so who may read an object is decided once per collection (`Collection.access_rule`) and reading a
million objects stays an index range scan. Objects keep their STIX ids and versions: each version is
its own row, and the newest (`is_latest`) is what lists show; older ones are history.
"""

import uuid

import orjson
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from renkei.core.access import NOTHING, Principal, RestrictedQuerySet
from renkei.core.choices import Action
from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import Organization
from renkei.sharing.choices import Tlp
from renkei.sharing.models import AudienceEntry

# Who may add objects to their organization's collections.
WRITING_ROLES = (Role.REPORTER, Role.OFFICER, Role.COORDINATOR, Role.ANALYST, Role.ORG_ADMIN)
# Who may register the organization's TAXII feeds and see their settings.
FEED_ADMIN_ROLES = (Role.OFFICER, Role.ORG_ADMIN)


class CollectionAudience(models.TextChoices):
    CHAIN = "chain", _("The mandated chain, like a report")
    NAMED = "named", _("The audience named below")


class Collection(models.Model):
    """A TAXII 2.1 collection: objects shared with one audience under one TLP label."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # An organization with nothing shared can be deleted with its empty collections; a collection
    # that holds objects keeps its owner, the objects' source, from being deleted.
    owner = models.ForeignKey(
        Organization, verbose_name=_("owner"), related_name="stix_collections", on_delete=models.CASCADE
    )
    # Blank for submissions collections, which are named after their owner in the reader's language.
    title = models.CharField(_("title"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    tlp = models.CharField(_("TLP"), max_length=16, choices=Tlp.choices, default=Tlp.AMBER)
    audience = models.CharField(
        _("audience"), max_length=8, choices=CollectionAudience.choices, default=CollectionAudience.CHAIN
    )
    share_with_ceptoar = models.BooleanField(_("share with the CEPTOAR"), default=False)
    # Each organization's own submissions: readable along its chain, writable by its officers.
    is_submissions = models.BooleanField(_("the organization's own submissions"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["owner_id", "created_at"]
        verbose_name = _("collection")
        verbose_name_plural = _("collections")
        constraints = [
            models.UniqueConstraint(
                fields=["owner"],
                condition=Q(is_submissions=True),
                name="one_submissions_collection_per_owner",
            ),
            models.CheckConstraint(
                condition=Q(is_submissions=False) | Q(audience=CollectionAudience.CHAIN),
                name="submissions_collection_follows_chain",
            ),
        ]

    def __str__(self) -> str:
        return self.display_title

    @property
    def display_title(self) -> str:
        if self.title:
            return self.title
        return gettext("%(organization)s: own submissions") % {"organization": self.owner.name}

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated:
            return NOTHING
        officers = Q(owner_id__in=principal.org_ids_with_role(Role.OFFICER))
        named = Q(
            pk__in=CollectionAudienceEntry.objects.filter(user_id=principal.user_id).values("collection_id")
        )
        if action == Action.CHANGE:
            # Writers are readers too: nobody adds to a collection they could not read back. A
            # writer's collection is their own organization's, so of the VIEW rule below only the
            # TLP:RED limit is left to ask.
            writers = Q(owner_id__in=principal.org_ids_with_role(*WRITING_ROLES))
            return writers & (~Q(tlp=Tlp.RED) | officers | named)
        if action != Action.VIEW:
            return NOTHING
        own = Q(owner_id__in=principal.org_ids)
        addressed = Q(pk__in=CollectionAudienceEntry.matching(principal).values("collection_id"))
        chain = Q(
            owner__in=Organization.objects.filter(sectors__in=principal.overseen_sector_ids).values("pk")
        )
        if principal.is_national_center:
            chain = Q(pk__isnull=False)
        chain |= Q(share_with_ceptoar=True, owner__parent_id__in=principal.org_ids)
        shared = (
            Q(audience=CollectionAudience.CHAIN) & chain | Q(audience=CollectionAudience.NAMED) & addressed
        )
        # TLP:RED reaches named people and the owner's officers, never whole organizations.
        return (~Q(tlp=Tlp.RED) & (own | shared)) | (Q(tlp=Tlp.RED) & (officers | named))


class CollectionAudienceEntry(AudienceEntry):
    collection = models.ForeignKey(
        Collection, verbose_name=_("collection"), related_name="audience_entries", on_delete=models.CASCADE
    )

    class Meta:
        verbose_name = _("collection audience")
        verbose_name_plural = _("collection audience")


class StixObject(models.Model):
    """One version of one STIX object in one collection, its JSON kept exactly as stored."""

    id = models.BigAutoField(primary_key=True)
    # Indexed as the first column of every index below. Its owner is the objects' source; who wrote
    # an object is kept with its write (the import status and its audit record), not on each row,
    # where every reference would be one more foreign-key check per object stored.
    collection = models.ForeignKey(
        Collection,
        verbose_name=_("collection"),
        related_name="stix_objects",
        on_delete=models.PROTECT,
        db_index=False,
    )
    stix_id = models.CharField(_("STIX id"), max_length=300)
    type = models.CharField(_("type"), max_length=250)
    spec_version = models.CharField(_("STIX version"), max_length=8, default="2.1")
    # The version: `modified`, else `created`, else when it was added (TAXII 2.1 §3.4.1).
    version = models.DateTimeField(_("version"))
    date_added = models.DateTimeField(_("added at"))
    is_latest = models.BooleanField(_("newest version"), default=True)
    # Compact JSON, served as it is: listing never re-encodes objects.
    body = models.TextField(_("STIX JSON"))

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("STIX object")
        verbose_name_plural = _("STIX objects")
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "stix_id", "version"], name="stix_object_version_once_per_collection"
            ),
        ]
        indexes = [
            # Pages in the order objects were added; `added_after` starts the scan part-way.
            models.Index(fields=["collection", "date_added", "id"], name="stix_object_added"),
            models.Index(fields=["collection", "type", "id"], name="stix_object_type"),
        ]

    def __str__(self) -> str:
        return self.stix_id

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        """An object is shared exactly as its collection is."""
        collections = Collection.objects.filter(Collection.access_rule(principal, action)).values("pk")
        return Q(collection_id__in=collections)


class ListedObjectsField(models.TextField):
    """A status's list of objects, kept as JSON text: a write of 50,000 objects lists them all, and
    encoding that list with orjson into text costs a fraction of what the ORM's JSONField and jsonb's
    parsing do. Nothing queries inside the list."""

    def from_db_value(self, value, expression, connection):
        return value if value is None else orjson.loads(value)

    def to_python(self, value):
        return orjson.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        return value if value is None else orjson.dumps(value).decode()

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))


class IngestStatus(models.Model):
    """The outcome of one write of objects (a TAXII status resource, an upload or a feed run's batch)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    collection = models.ForeignKey(
        Collection, verbose_name=_("collection"), related_name="+", on_delete=models.CASCADE
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        related_name="+",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    total_count = models.PositiveIntegerField(_("objects"))
    success_count = models.PositiveIntegerField(_("accepted"))
    failure_count = models.PositiveIntegerField(_("rejected"))
    # [{"id", "version", "message"?}]: as TAXII's status resource lists them.
    successes = ListedObjectsField(_("accepted objects"), default=list)
    failures = ListedObjectsField(_("rejected objects"), default=list)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("import status")
        verbose_name_plural = _("import statuses")
        constraints = [
            models.CheckConstraint(
                condition=Q(total_count=models.F("success_count") + models.F("failure_count")),
                name="ingest_status_counts_add_up",
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        if not principal.is_authenticated or action != Action.VIEW:
            return NOTHING
        return Q(requested_by_id=principal.user_id)


# Organization types that get a submissions collection: everyone who reports or shares.
SUBMITTING_TYPES = frozenset(OrganizationType) - {OrganizationType.PUBLIC}


class TaxiiFeed(models.Model):
    """A remote TAXII 2.1 collection, polled into one of our collections, whose TLP label and audience
    every imported object then carries."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=200)
    url = models.URLField(_("collection address"), max_length=1000)
    username = models.CharField(_("user name"), max_length=200, blank=True)
    # The password or token, encrypted (see interop.feeds); never shown again once saved.
    secret_encrypted = models.TextField(_("encrypted password or token"), blank=True)
    poll_minutes = models.PositiveIntegerField(_("poll every (minutes)"), default=60)
    collection = models.OneToOneField(
        Collection, verbose_name=_("imports into"), related_name="feed", on_delete=models.PROTECT
    )
    active = models.BooleanField(_("active"), default=True)
    # The remote's X-TAXII-Date-Added-Last we have read up to: the next poll asks for what came after.
    added_after = models.CharField(_("read up to"), max_length=40, blank=True)
    next_poll_at = models.DateTimeField(_("next poll"), null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), related_name="+", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("TAXII feed")
        verbose_name_plural = _("TAXII feeds")
        constraints = [
            models.CheckConstraint(condition=Q(poll_minutes__gte=1), name="feed_polls_at_most_every_minute"),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        """A feed's settings belong to the administrators of the organization it imports for."""
        if not principal.is_authenticated or action not in (Action.VIEW, Action.CHANGE):
            return NOTHING
        return Q(collection__owner_id__in=principal.org_ids_with_role(*FEED_ADMIN_ROLES))


class FeedRun(models.Model):
    """One poll of a feed: what it fetched, stored and rejected, or why it failed."""

    feed = models.ForeignKey(TaxiiFeed, verbose_name=_("feed"), related_name="runs", on_delete=models.CASCADE)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    fetched = models.PositiveIntegerField(_("objects fetched"), default=0)
    created = models.PositiveIntegerField(_("objects stored"), default=0)
    rejected = models.PositiveIntegerField(_("objects rejected"), default=0)
    # The first rejections, [{"id", "version", "message"}], enough to see what is wrong.
    failures = models.JSONField(_("rejected objects"), default=list)
    error = models.TextField(_("error"), blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("feed run")
        verbose_name_plural = _("feed runs")
        indexes = [models.Index(fields=["feed", "-started_at"], name="feed_run_latest")]

    def __str__(self) -> str:
        return f"{self.feed}: {self.started_at:%Y-%m-%d %H:%M}"

    @classmethod
    def access_rule(cls, principal: Principal, action: str) -> Q:
        """A run is seen with its feed."""
        return Q(feed__in=TaxiiFeed.objects.filter(TaxiiFeed.access_rule(principal, action)).values("pk"))
