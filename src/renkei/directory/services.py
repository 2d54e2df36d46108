"""Writes to the directory. Every change is audited in its own transaction."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.hashers import identify_hasher
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import ProtectedError, Q, RestrictedError
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.audit.models import AuditAction
from renkei.audit.services import audit_write, snapshot
from renkei.core.access import forget_principal, principal_for
from renkei.directory.choices import PARENT_TYPES, ContactKind, Language, OrganizationType, Role, SizeClass
from renkei.directory.models import (
    MINIMUM_CONTACT_ROUTES,
    ContactRoute,
    Membership,
    Organization,
    Sector,
    User,
    may_administer_directory,
)

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
    max_length = ContactRoute._meta.get_field("value").max_length
    for contact in contacts:
        if contact.kind not in ContactKind.values:
            raise ValidationError(
                _("Unknown contact kind %(kind)s; use one of: %(kinds)s")
                % {"kind": contact.kind, "kinds": ", ".join(ContactKind.values)},
                code="contact_kind",
            )
        if len(contact.value) > max_length:
            raise ValidationError(
                _("A contact route may be at most %(count)d characters long.") % {"count": max_length},
                code="contact_length",
            )
        if contact.kind == ContactKind.EMAIL:
            try:
                validate_email(contact.value)
            except ValidationError:
                raise ValidationError(
                    _("%(value)s is not a valid e-mail address.") % {"value": contact.value},
                    code="contact_email",
                ) from None
    routes = [(contact.kind, contact.value) for contact in contacts]
    if len(set(routes)) != len(routes):
        raise ValidationError(_("The same contact route is listed twice."), code="contact_duplicate")


def _create_routes(organization: Organization, contacts: Sequence[ContactInput]) -> None:
    for priority, contact in enumerate(contacts, start=1):
        ContactRoute.objects.create(
            organization=organization,
            kind=contact.kind,
            value=contact.value,
            label=contact.label,
            priority=priority,
        )


def _validate_names(name_ja: str, name_en: str) -> None:
    if not name_ja:
        raise ValidationError(_("A name is required."), code="name_required")
    max_length = Organization._meta.get_field("name_ja").max_length
    if len(name_ja) > max_length or len(name_en) > max_length:
        raise ValidationError(
            _("An organization name may be at most %(count)d characters long.") % {"count": max_length},
            code="name_length",
        )


def _validate_org_type(org_type: str) -> None:
    if org_type not in OrganizationType.values:
        raise ValidationError(
            _("Unknown organization type %(type)s; use one of: %(types)s")
            % {"type": org_type, "types": ", ".join(OrganizationType.values)},
            code="org_type",
        )


def _validate_organization(
    *, org_type: str, size: str, sectors: Sequence[Sector], parent: Organization | None
) -> None:
    _validate_org_type(org_type)
    if size and size not in SizeClass.values:
        raise ValidationError(_("Size must be large or sme."), code="size")
    if size and org_type not in (OrganizationType.OPERATOR, OrganizationType.VENDOR):
        raise ValidationError(_("Only operators and vendors have a size class."), code="size")
    if org_type == OrganizationType.OPERATOR and not sectors:
        raise ValidationError(_("An operator belongs to at least one sector."), code="sector_required")
    if parent is not None and not parent.active:
        raise ValidationError(_("The parent body %(name)s is inactive.") % {"name": parent}, code="parent")
    if parent is not None and parent.type not in PARENT_TYPES.get(org_type, ()):
        raise ValidationError(
            _("A %(type)s cannot report through a %(parent_type)s (%(name)s).")
            % {
                "type": OrganizationType(org_type).label,
                "parent_type": OrganizationType(parent.type).label,
                "name": parent,
            },
            code="parent_type",
        )


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
    name_en = name_en.strip()
    _validate_names(name_ja, name_en)
    _validate_organization(org_type=org_type, size=size, sectors=sectors, parent=parent)
    if Organization.objects.filter(Q(name_ja=name_ja) | Q(name_en=name_ja)).exists() or (
        name_en and Organization.objects.filter(Q(name_ja=name_en) | Q(name_en=name_en)).exists()
    ):
        raise ValidationError(
            _("An organization named %(name)s already exists.") % {"name": name_en or name_ja},
            code="duplicate",
        )
    if contacts:
        _validate_contacts(contacts)
    organization = Organization.objects.create(
        type=org_type, name_ja=name_ja, name_en=name_en.strip(), parent=parent, size=size
    )
    organization.sectors.set(sectors)
    _create_routes(organization, contacts)
    after = snapshot(organization) | {"contact_routes": [f"{c.kind}:{c.value}" for c in contacts]}
    audit_write(actor=actor, action=AuditAction.CREATE, obj=organization, after=after)
    return organization


@transaction.atomic
def organization_update(*, actor, organization: Organization, **changes) -> Organization:
    """Change an organization's names, sectors, parent, size or active flag.

    Names, sectors, parent body and the active flag decide who is in whose reporting chain, so only
    directory administrators (the national centre) change them; an organization's own administrator
    changes its size class (and, elsewhere, its contact routes and members).
    """
    before = snapshot(organization)
    sectors = changes.pop("sectors", None)
    allowed = {"name_ja", "name_en", "parent", "size", "active"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"organization_update got unexpected fields: {sorted(unknown)}")
    structural = {
        field for field, value in changes.items() if field != "size" and getattr(organization, field) != value
    }
    if sectors is not None and set(sectors) != set(organization.sectors.all()):
        structural.add("sectors")
    if structural and actor is not None and not may_administer_directory(principal_for(actor)):
        raise ValidationError(
            _("Only the national centre can change an organization's names, sectors, parent body or status."),
            code="structure_forbidden",
        )
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
    audit_write(
        actor=actor, action=AuditAction.UPDATE, obj=organization, before=before, after=snapshot(organization)
    )
    return organization


@transaction.atomic
def contact_routes_replace(*, actor, organization: Organization, contacts: Sequence[ContactInput]) -> None:
    """Replace an organization's contact routes; it must keep at least two."""
    _validate_contacts(contacts)
    before = [str(route) for route in organization.contact_routes.all()]
    organization.contact_routes.all().delete()
    _create_routes(organization, contacts)
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
    password_hash: str = "",
    send_welcome: bool = True,
) -> User:
    """Add a person with a role in an organization; queue the welcome e-mail if there is an address.

    `password_hash` (from `make_password`) is for bulk provisioning, where hashing the same password
    once per account would take minutes; `send_welcome=False` is for accounts nobody will read mail for.
    """
    username = username.strip()
    if not username:
        raise ValidationError(_("A username is required."), code="username_required")
    if len(username) > User._meta.get_field("username").max_length:
        raise ValidationError(_("The username %(name)s is too long.") % {"name": username}, code="username")
    try:
        User.username_validator(username)
    except ValidationError:
        raise ValidationError(
            _("The username %(name)s may contain only letters, digits and @ . + - _") % {"name": username},
            code="username",
        ) from None
    if role not in Role.values:
        raise ValidationError(
            _("Unknown role %(role)s; use one of: %(roles)s")
            % {"role": role, "roles": ", ".join(Role.values)},
            code="role",
        )
    if language and language not in Language.values:
        raise ValidationError(
            _("Unknown language %(language)s; use one of: %(languages)s")
            % {"language": language, "languages": ", ".join(Language.values)},
            code="language",
        )
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(_("The username %(name)s is taken.") % {"name": username}, code="duplicate")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError(
                _("%(value)s is not a valid e-mail address.") % {"value": email}, code="email"
            ) from None
    user = User(username=username, email=email, display_name=display_name, language=language)
    if password and password_hash:
        raise TypeError("user_create takes a password or a password hash, not both")
    if password:
        validate_password(password, user)
        user.set_password(password)
    elif password_hash:
        try:
            identify_hasher(password_hash)
        except ValueError:
            raise ValidationError(
                _("The password hash is not in a known format."), code="password_hash"
            ) from None
        user.password = password_hash
    else:
        user.set_unusable_password()
    user.save()
    Membership.objects.create(user=user, organization=organization, role=role)
    after = snapshot(user) | {"organization": organization.pk, "role": role}
    audit_write(actor=actor, action=AuditAction.CREATE, obj=user, after=after)
    if email and send_welcome:
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
            audit_write(
                actor=actor, action=AuditAction.CREATE, obj=organization, after=snapshot(organization)
            )
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


def _retired_name(name: str, pk: int, max_length: int) -> str:
    suffix = f" (retired #{pk})"
    return name[: max_length - len(suffix)] + suffix


@transaction.atomic
def user_remove(*, actor, user: User) -> bool:
    """Remove a person. Returns True if the account was deleted.

    An account that history points at (audit records keep their actor) cannot be deleted; it is
    retired instead: deactivated, stripped of its roles and password, and renamed so that its
    username is free for someone else. The audit trail keeps the old name in `actor_label`.
    """
    before = snapshot(user) | {
        "memberships": [[m.organization_id, m.role] for m in user.memberships.order_by("pk")]
    }
    user_id, label = user.pk, str(user)
    try:
        with transaction.atomic():
            user.delete()
    except (ProtectedError, RestrictedError):
        pass
    else:
        audit_write(
            actor=actor,
            action=AuditAction.DELETE,
            object_type=User._meta.label_lower,
            object_id=str(user_id),
            object_repr=label,
            before=before,
        )
        return True
    user.memberships.all().delete()
    user.is_active = False
    user.username = _retired_name(user.username, user.pk, User._meta.get_field("username").max_length)
    user.set_unusable_password()
    user.save()
    forget_principal(user)
    audit_write(actor=actor, action=AuditAction.UPDATE, obj=user, before=before, after=snapshot(user))
    return False


@transaction.atomic
def organization_remove(*, actor, organization: Organization) -> bool:
    """Remove an organization. Returns True if it was deleted.

    An organization that still has members, child bodies or records pointing at it is retired
    instead: deactivated and renamed, so that its name is free again and its history stays intact.
    """
    before = snapshot(organization) | {
        "contact_routes": [str(route) for route in organization.contact_routes.all()]
    }
    organization_id, label = organization.pk, str(organization)
    try:
        with transaction.atomic():
            organization.delete()
    except (ProtectedError, RestrictedError):
        pass
    else:
        audit_write(
            actor=actor,
            action=AuditAction.DELETE,
            object_type=Organization._meta.label_lower,
            object_id=str(organization_id),
            object_repr=label,
            before=before,
        )
        return True
    max_length = Organization._meta.get_field("name_ja").max_length
    organization.active = False
    organization.name_ja = _retired_name(organization.name_ja, organization.pk, max_length)
    if organization.name_en:
        organization.name_en = _retired_name(organization.name_en, organization.pk, max_length)
    organization.save()
    audit_write(
        actor=actor, action=AuditAction.UPDATE, obj=organization, before=before, after=snapshot(organization)
    )
    return False


@transaction.atomic
def two_factor_device_add(*, actor, user: User, key: str, name: str) -> TOTPDevice:
    """Give a person a confirmed TOTP device with a known hex key (provisioning, e.g. the demo).

    People who set up their own authenticator app go through the sign-in pages instead, where the
    key is generated and confirmed with a first code.
    """
    device = TOTPDevice(user=user, name=name, key=key, confirmed=True)
    try:
        device.full_clean(exclude=["user"])
    except ValidationError:
        raise ValidationError(_("A TOTP key is 40 hexadecimal digits or more."), code="totp_key") from None
    device.save()
    audit_write(
        actor=actor,
        action=AuditAction.CREATE,
        obj=device,
        after={"user": user.pk, "name": name, "confirmed": True},
    )
    return device


# --- Bulk import of organizations ------------------------------------------------------------------

# Columns of an import file, in the order `docs/cli.md` documents them. Lists inside a cell
# (sectors, contacts) are separated by semicolons.
IMPORT_COLUMNS = ("name_ja", "name_en", "type", "sectors", "parent", "size", "contacts")
IMPORT_REQUIRED_COLUMNS = ("name_ja", "type")
IMPORT_LIST_SEPARATOR = ";"


@dataclass(frozen=True)
class OrganizationImportRow:
    """One row of an import file, as text. `row` is its number as a spreadsheet shows it."""

    row: int
    name_ja: str
    type: str
    name_en: str = ""
    sectors: str = ""
    parent: str = ""
    size: str = ""
    contacts: str = ""


@dataclass(frozen=True)
class _PlannedOrganization:
    source: OrganizationImportRow
    sectors: list[Sector]
    parent: Organization | None
    parent_in_file: str
    contacts: list[ContactInput]


def _split_list(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(IMPORT_LIST_SEPARATOR) if item.strip()]


def import_row_error(row: int, error: ValidationError | str) -> ValidationError:
    """A problem on one row of an import file, numbered as a spreadsheet shows it."""
    message = error if isinstance(error, str) else " ".join(error.messages)
    text = _("row %(row)d: %(message)s") % {"row": row, "message": message}
    # The text is final; it goes in params so that a "%" in a name is not read as a placeholder.
    return ValidationError("%(text)s", code="import_row", params={"text": text, "row": row})


def _names_index(organizations: Iterable[Organization]) -> dict[str, list[Organization]]:
    index: dict[str, list[Organization]] = {}
    for organization in organizations:
        for name in {organization.name_ja, organization.name_en} - {""}:
            index.setdefault(name, []).append(organization)
    return index


@transaction.atomic
def organizations_import(*, actor, rows: Sequence[OrganizationImportRow]) -> list[Organization]:
    """Create many organizations, all or none.

    Every row is checked before anything is written, against the database and against the other
    rows (duplicate names; a parent body may be an existing organization or one on an earlier
    row). On any problem nothing is written and the ValidationError lists one `row N: …` message
    per faulty row, each with `params["row"]`.
    """
    sectors_by_code_ = {sector.code: sector for sector in Sector.objects.all()}
    file_names = {name for row in rows for name in (row.name_ja.strip(), row.name_en.strip()) if name}
    parent_names = {row.parent.strip() for row in rows if row.parent.strip()}
    existing = _names_index(
        Organization.objects.filter(
            Q(name_ja__in=file_names | parent_names) | Q(name_en__in=file_names | parent_names)
        )
    )
    first_row_of_name: dict[str, int] = {}
    for row in rows:
        for name in (row.name_ja.strip(), row.name_en.strip()):
            if name:
                first_row_of_name.setdefault(name, row.row)

    errors: list[ValidationError] = []
    plans: list[_PlannedOrganization] = []
    for row in rows:
        try:
            plans.append(_plan_import_row(row, sectors_by_code_, existing, first_row_of_name))
        except ValidationError as error:
            errors.append(import_row_error(row.row, error))
    if errors:
        raise ValidationError(errors)

    created: dict[str, Organization] = {}
    organizations = []
    for plan in plans:
        source = plan.source
        parent = plan.parent or created.get(plan.parent_in_file)
        try:
            organization = organization_create(
                actor=actor,
                name_ja=source.name_ja,
                name_en=source.name_en,
                org_type=source.type.strip(),
                sectors=plan.sectors,
                parent=parent,
                size=source.size.strip().lower(),
                contacts=plan.contacts,
            )
        except ValidationError as error:
            raise ValidationError([import_row_error(source.row, error)]) from error
        for name in (organization.name_ja, organization.name_en):
            if name:
                created[name] = organization
        organizations.append(organization)
    return organizations


def _plan_import_row(
    row: OrganizationImportRow,
    sectors_by_code_: dict[str, Sector],
    existing: dict[str, list[Organization]],
    first_row_of_name: dict[str, int],
) -> _PlannedOrganization:
    name_ja, name_en = row.name_ja.strip(), row.name_en.strip()
    _validate_names(name_ja, name_en)
    for name in (name_ja, name_en):
        if not name:
            continue
        if name in existing:
            raise ValidationError(
                _("An organization named %(name)s already exists.") % {"name": name}, code="duplicate"
            )
        if first_row_of_name[name] != row.row:
            raise ValidationError(
                _("The name %(name)s is already used on row %(row)d.")
                % {"name": name, "row": first_row_of_name[name]},
                code="duplicate_in_file",
            )
    _validate_org_type(row.type.strip())
    unknown = [code for code in _split_list(row.sectors) if code not in sectors_by_code_]
    if unknown:
        raise ValidationError(
            _("Unknown sector code: %(codes)s") % {"codes": ", ".join(unknown)}, code="unknown_sector"
        )
    sectors = [sectors_by_code_[code] for code in dict.fromkeys(_split_list(row.sectors))]
    parent, parent_in_file = None, ""
    parent_name = row.parent.strip()
    if parent_name:
        if parent_name in (name_ja, name_en):
            raise ValidationError(_("An organization cannot be its own parent body."), code="parent")
        if parent_name in first_row_of_name:
            parent_row = first_row_of_name[parent_name]
            if parent_row >= row.row:
                raise ValidationError(
                    _("The parent body %(name)s is on row %(row)d; list parent bodies before their members.")
                    % {"name": parent_name, "row": parent_row},
                    code="parent_order",
                )
            parent_in_file = parent_name
        else:
            matches = existing.get(parent_name, [])
            if not matches:
                raise ValidationError(
                    _("Unknown organization: %(name)s") % {"name": parent_name}, code="unknown"
                )
            if len(matches) > 1:
                raise ValidationError(
                    _("More than one organization is named %(name)s; use the Japanese name.")
                    % {"name": parent_name},
                    code="ambiguous",
                )
            parent = matches[0]
    _validate_organization(
        org_type=row.type.strip(), size=row.size.strip().lower(), sectors=sectors, parent=parent
    )
    contacts = [ContactInput.parse(text) for text in _split_list(row.contacts)]
    if contacts:
        _validate_contacts(contacts)
    return _PlannedOrganization(
        source=row, sectors=sectors, parent=parent, parent_in_file=parent_in_file, contacts=contacts
    )
