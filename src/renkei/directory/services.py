"""Writes to the directory. Every change is audited in its own transaction."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.core.access import forget_principal
from renkei.directory.choices import ContactKind, OrganizationType, Role, SizeClass
from renkei.directory.models import MINIMUM_CONTACT_ROUTES, ContactRoute, Membership, Organization, Sector, User

REFERENCE_DATA = Path(__file__).parent / "referencedata" / "japan.json"


def organization_by_name(name: str) -> Organization:
    """The organization whose Japanese or English name is exactly `name`."""
    try:
        return Organization.objects.get(Q(name_ja=name) | Q(name_en=name))
    except Organization.DoesNotExist:
        raise ValidationError(_("Unknown organization: %(name)s") % {"name": name}, code="unknown") from None
    except Organization.MultipleObjectsReturned:
        raise ValidationError(
            _("More than one organization is named %(name)s; use the Japanese name.") % {"name": name},
            code="ambiguous",
        ) from None


def sectors_by_code(codes: Iterable[str]) -> list[Sector]:
    codes = [code.strip() for code in codes if code and code.strip()]
    found = {sector.code: sector for sector in Sector.objects.filter(code__in=codes)}
    unknown = [code for code in codes if code not in found]
    if unknown:
        raise ValidationError(
            _("Unknown sector code: %(codes)s") % {"codes": ", ".join(unknown)}, code="unknown_sector"
        )
    return [found[code] for code in codes]


@dataclass(frozen=True)
class ContactInput:
    kind: str
    value: str
    label: str = ""

    @classmethod
    def parse(cls, text: str) -> "ContactInput":
        """`email:soc@example.jp`, `phone:03-1234-5678` or `other:…`."""
        kind, sep, value = text.partition(":")
        if not sep or not value.strip():
            raise ValidationError(
                _("A contact route is written KIND:VALUE, e.g. email:soc@example.jp (got %(text)s)")
                % {"text": text},
                code="contact_format",
            )
        return cls(kind=kind.strip().lower(), value=value.strip())


def _validate_contacts(contacts: Sequence[ContactInput]) -> None:
    if len(contacts) < MINIMUM_CONTACT_ROUTES:
        raise ValidationError(
            _("An organization needs at least %(count)d contact routes (e.g. e-mail and phone).")
            % {"count": MINIMUM_CONTACT_ROUTES},
            code="too_few_contacts",
        )
    for contact in contacts:
        if contact.kind not in ContactKind.values:
            raise ValidationError(
                _("Unknown contact kind %(kind)s; use one of: %(kinds)s")
                % {"kind": contact.kind, "kinds": ", ".join(ContactKind.values)},
                code="contact_kind",
            )
        if contact.kind == ContactKind.EMAIL:
            validate_email(contact.value)


def _validate_organization(*, org_type: str, size: str, sectors: Sequence[Sector], parent: Organization | None):
    if org_type not in OrganizationType.values:
        raise ValidationError(
            _("Unknown organization type %(type)s; use one of: %(types)s")
            % {"type": org_type, "types": ", ".join(OrganizationType.values)},
            code="org_type",
        )
    if size and size not in SizeClass.values:
        raise ValidationError(_("Size must be large or sme."), code="size")
    if size and org_type not in (OrganizationType.OPERATOR, OrganizationType.VENDOR):
        raise ValidationError(_("Only operators and vendors have a size class."), code="size")
    if org_type == OrganizationType.OPERATOR and not sectors:
        raise ValidationError(_("An operator belongs to at least one sector."), code="sector_required")
    if parent is not None and not parent.active:
        raise ValidationError(_("The parent body %(name)s is inactive.") % {"name": parent}, code="parent")


@transaction.atomic
def organization_create(
    *,
    actor,
    name_ja: str,
    org_type: str,
    name_en: str = "",
    sectors: Sequence[Sector] = (),
    parent: Organization | None = None,
    size: str = "",
    contacts: Sequence[ContactInput] = (),
) -> Organization:
    """Add an organization. Contact routes are optional at creation, but if given, at least two."""
    name_ja = name_ja.strip()
    if not name_ja:
        raise ValidationError(_("A name is required."), code="name_required")
    _validate_organization(org_type=org_type, size=size, sectors=sectors, parent=parent)
    if Organization.objects.filter(Q(name_ja=name_ja) | Q(name_en=name_ja)).exists() or (
        name_en and Organization.objects.filter(Q(name_ja=name_en) | Q(name_en=name_en)).exists()
    ):
        raise ValidationError(
            _("An organization named %(name)s already exists.") % {"name": name_en or name_ja}, code="duplicate"
        )
    if contacts:
        _validate_contacts(contacts)
    organization = Organization.objects.create(
        type=org_type, name_ja=name_ja, name_en=name_en.strip(), parent=parent, size=size
    )
    organization.sectors.set(sectors)
    for priority, contact in enumerate(contacts, start=1):
        ContactRoute.objects.create(
            organization=organization, kind=contact.kind, value=contact.value, label=contact.label, priority=priority
        )
    after = snapshot(organization) | {"contact_routes": [f"{c.kind}:{c.value}" for c in contacts]}
    audit_write(actor=actor, action=AuditAction.CREATE, obj=organization, after=after)
    return organization


@transaction.atomic
def organization_update(*, actor, organization: Organization, **changes) -> Organization:
    """Change an organization's names, sectors, parent, size or active flag."""
    before = snapshot(organization)
    sectors = changes.pop("sectors", None)
    allowed = {"name_ja", "name_en", "parent", "size", "active"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"organization_update got unexpected fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(organization, field, value.strip() if isinstance(value, str) else value)
    if organization.parent_id is not None and organization.parent_id == organization.pk:
        raise ValidationError(_("An organization cannot be its own parent body."), code="parent")
    _validate_organization(
        org_type=organization.type,
        size=organization.size,
        sectors=sectors if sectors is not None else list(organization.sectors.all()),
        parent=organization.parent,
    )
    clash = Organization.objects.exclude(pk=organization.pk).filter(
        Q(name_ja=organization.name_ja) | Q(name_en=organization.name_ja)
    )
    if organization.name_en:
        clash = clash | Organization.objects.exclude(pk=organization.pk).filter(
            Q(name_ja=organization.name_en) | Q(name_en=organization.name_en)
        )
    if clash.exists():
        raise ValidationError(_("An organization with that name already exists."), code="duplicate")
    organization.save()
    if sectors is not None:
        organization.sectors.set(sectors)
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=organization, before=before, after=snapshot(organization))
    return organization


@transaction.atomic
def contact_routes_replace(*, actor, organization: Organization, contacts: Sequence[ContactInput]) -> None:
    """Replace an organization's contact routes; it must keep at least two."""
    _validate_contacts(contacts)
    before = [str(route) for route in organization.contact_routes.all()]
    organization.contact_routes.all().delete()
    for priority, contact in enumerate(contacts, start=1):
        ContactRoute.objects.create(
            organization=organization, kind=contact.kind, value=contact.value, label=contact.label, priority=priority
        )
    audit_write(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=organization,
        object_repr=f"{organization} contact routes",
        before={"contact_routes": before},
        after={"contact_routes": [f"{c.kind}:{c.value}" for c in contacts]},
    )


@transaction.atomic
def user_create(
    *,
    actor,
    username: str,
    organization: Organization,
    role: str,
    email: str = "",
    password: str | None = None,
    display_name: str = "",
    language: str = "",
) -> User:
    """Add a person with a role in an organization; queue the welcome e-mail if there is an address."""
    username = username.strip()
    if not username:
        raise ValidationError(_("A username is required."), code="username_required")
    if role not in Role.values:
        raise ValidationError(
            _("Unknown role %(role)s; use one of: %(roles)s") % {"role": role, "roles": ", ".join(Role.values)},
            code="role",
        )
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(_("The username %(name)s is taken.") % {"name": username}, code="duplicate")
    if email:
        validate_email(email)
    user = User(username=username, email=email, display_name=display_name, language=language)
    if password:
        validate_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    Membership.objects.create(user=user, organization=organization, role=role)
    audit_write(actor=actor, action=AuditAction.CREATE, obj=user, after=snapshot(user) | {
        "organization": organization.pk, "role": role,
    })
    if email:
        from renkei.directory.tasks import send_welcome_email

        transaction.on_commit(lambda: send_welcome_email.enqueue(user_id=user.pk))
    return user


@transaction.atomic
def membership_add(*, actor, user: User, organization: Organization, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError(_("Unknown role %(role)s.") % {"role": role}, code="role")
    membership, created = Membership.objects.get_or_create(user=user, organization=organization, role=role)
    if created:
        audit_write(actor=actor, action=AuditAction.CREATE, obj=membership, after=snapshot(membership))
    forget_principal(user)
    return membership


@transaction.atomic
def membership_remove(*, actor, membership: Membership) -> None:
    before = snapshot(membership)
    audit_write(actor=actor, action=AuditAction.DELETE, obj=membership, before=before)
    membership.delete()
    forget_principal(membership.user)


@transaction.atomic
def reference_data_load(*, actor=None, path: Path = REFERENCE_DATA) -> dict[str, int]:
    """Create the reference sectors and bodies that are missing. Existing rows are left as
    administrators edited them: reloading never overwrites local changes."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    created = {"sectors": 0, "organizations": 0}
    organizations = {}
    for item in data["organizations"]:
        organization = Organization.objects.filter(name_ja=item["name_ja"]).first()
        if organization is None:
            organization = Organization.objects.create(
                type=item["type"], name_ja=item["name_ja"], name_en=item.get("name_en", "")
            )
            audit_write(actor=actor, action=AuditAction.CREATE, obj=organization, after=snapshot(organization))
            created["organizations"] += 1
            organization._fresh = True
        organizations[item["name_ja"]] = organization
    for item in data["sectors"]:
        sector = Sector.objects.filter(code=item["code"]).first()
        if sector is None:
            sector = Sector.objects.create(
                code=item["code"],
                name_ja=item["name_ja"],
                name_en=item.get("name_en", ""),
                added_in=item.get("added_in"),
                display_order=item.get("display_order", 0),
            )
            sector.ministries.set([organizations[name] for name in item.get("ministries", [])])
            audit_write(actor=actor, action=AuditAction.CREATE, obj=sector, after=snapshot(sector))
            created["sectors"] += 1
    for item in data["organizations"]:
        organization = organizations[item["name_ja"]]
        if not getattr(organization, "_fresh", False):
            continue
        if item.get("parent"):
            organization.parent = organizations[item["parent"]]
            organization.save(update_fields=["parent"])
        organization.sectors.set(Sector.objects.filter(code__in=item.get("sectors", [])))
    return created
