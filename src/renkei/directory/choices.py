from django.db import models
from django.utils.translation import gettext_lazy as _


class OrganizationType(models.TextChoices):
    NATIONAL_CENTER = "national_center", _("National centre")
    SECTOR_MINISTRY = "sector_ministry", _("Sector ministry")
    SECURITY_MINISTRY = "security_ministry", _("Security ministry")
    RESPONSE_AGENCY = "response_agency", _("Response agency")
    RELATED_AGENCY = "related_agency", _("Related agency")
    CEPTOAR = "ceptoar", _("CEPTOAR")
    CEPTOAR_COUNCIL = "ceptoar_council", _("CEPTOAR Council")
    OPERATOR = "operator", _("Critical-infrastructure operator")
    VENDOR = "vendor", _("Vendor")
    DISASTER_AGENCY = "disaster_agency", _("Disaster-management agency")
    INTERNATIONAL_PARTNER = "international_partner", _("International partner")
    PUBLIC = "public", _("Public")


# The critical-infrastructure community (TLP:GREEN's "community", the "all CI" audience): every
# organization type except the public and international partners.
COMMUNITY_TYPES = frozenset(OrganizationType) - {
    OrganizationType.PUBLIC,
    OrganizationType.INTERNATIONAL_PARTNER,
}

# Organizations whose staff must use two-factor authentication: the government bodies.
TWO_FACTOR_ORGANIZATION_TYPES = frozenset(
    {
        OrganizationType.NATIONAL_CENTER,
        OrganizationType.SECTOR_MINISTRY,
        OrganizationType.SECURITY_MINISTRY,
        OrganizationType.RESPONSE_AGENCY,
        OrganizationType.DISASTER_AGENCY,
    }
)

# Which bodies an organization may report through. The reporting chain (and so who sees whose
# contact details) follows `parent`, so it is structure, not a free choice: types not listed
# here have no parent body.
PARENT_TYPES = {
    OrganizationType.OPERATOR: frozenset({OrganizationType.CEPTOAR}),
    OrganizationType.CEPTOAR: frozenset({OrganizationType.CEPTOAR_COUNCIL}),
}


class SizeClass(models.TextChoices):
    LARGE = "large", _("Large enterprise")
    SME = "sme", _("Small or medium enterprise")


class Role(models.TextChoices):
    REPORTER = "reporter", _("Reporter")
    OFFICER = "officer", _("Security officer")
    COORDINATOR = "coordinator", _("Coordinator")
    ANALYST = "analyst", _("Analyst")
    EXECUTIVE = "executive", _("Executive")
    ORG_ADMIN = "org_admin", _("Organization administrator")


class ContactKind(models.TextChoices):
    EMAIL = "email", _("E-mail")
    PHONE = "phone", _("Phone")
    OTHER = "other", _("Other")


class Language(models.TextChoices):
    JAPANESE = "ja", _("Japanese")
    ENGLISH = "en", _("English")
