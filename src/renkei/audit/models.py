"""The append-only, hash-chained audit trail of every change and every read of restricted material."""

from django.conf import settings
from django.db import connection, models
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit record."""


class AuditRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit records are append-only")

    def chain_unsealed(self, records: list["AuditRecord"]) -> None:
        """Write the records' places in the chain in one statement, once: only `audit_seal` calls
        this, and a record that is already sealed is left as it is."""
        if not records:
            return
        table = connection.ops.quote_name(AuditRecord._meta.db_table)
        rows = ", ".join(["(CAST(%s AS BIGINT), CAST(%s AS BIGINT), %s, %s)"] * len(records))
        params = [value for r in records for value in (r.pk, r.seq, r.prev_hash, r.hash)]
        # Only the table name and placeholders are formatted in; every value is a parameter.
        statement = (
            f"UPDATE {table} SET seq = chained.column2, prev_hash = chained.column3, "  # noqa: S608
            f"hash = chained.column4 FROM (VALUES {rows}) AS chained "
            f"WHERE {table}.id = chained.column1 AND {table}.seq IS NULL"
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, params)

    def delete(self):
        raise AppendOnlyError("audit records are append-only")


class AuditAction(models.TextChoices):
    CREATE = "create", _("Created")
    UPDATE = "update", _("Updated")
    DELETE = "delete", _("Deleted")
    READ = "read", _("Read")
    LOGIN = "login", _("Logged in")
    TOKEN_CREATE = "token_create", _("API token created")
    TOKEN_REVOKE = "token_revoke", _("API token revoked")


class AuditRecord(models.Model):
    """One audited event. Each record carries the hash of the one before it, so that any edit,
    insertion or removal in the database breaks the chain that `renkei audit verify` walks.

    A record is written in its change's transaction without a place in the chain, and sealed (given
    `seq`, `prev_hash` and `hash`) by the sealer beside the task workers once that has committed.
    Chaining at write time would serialize every writer on the chain's head.

    Every write adds a record and every seal rewrites it, so it carries few indexes: by place in the
    chain, by object, by time and by actor."""

    at = models.DateTimeField(_("at"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        related_name="+",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    # Kept as text too, so the record stays readable whatever happens to the account.
    actor_label = models.CharField(_("actor name"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=16, choices=AuditAction.choices)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    seq = models.PositiveBigIntegerField(_("place in the chain"), null=True, blank=True, unique=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64, blank=True, default="")
    # NULL until sealed, like `seq`: an unsealed record has no hash yet. Not indexed: `audit verify`
    # walks the chain by `seq` and recomputes the hashes.
    hash = models.CharField(_("hash"), max_length=64, null=True, blank=True)  # noqa: DJ001

    objects = AuditRecordQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("audit record")
        verbose_name_plural = _("audit records")
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("audit records are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit records are append-only")


class AuditChainHead(models.Model):
    """The chain's newest hash and length. Its row is locked while records are sealed, which
    serializes the sealers, and it lets `verify` notice records cut from the end of the chain."""

    last_hash = models.CharField(_("last hash"), max_length=64)
    length = models.PositiveBigIntegerField(_("length"), default=0)

    class Meta:
        verbose_name = _("audit chain head")

    def __str__(self) -> str:
        return f"{self.length}:{self.last_hash[:12]}"
