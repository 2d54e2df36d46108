import pytest

from renkei.directory.choices import Role
from renkei.directory.models import Organization, Sector
from renkei.directory.tests.factories import OrganizationFactory, member


@pytest.fixture
def crisis(community):
    """The shared community plus what a situation needs: a second national-centre coordinator (two
    people decide), a power company and a water utility, and the response and disaster agencies."""
    c = community
    c.nisc_coordinator_2 = member(c.nisc, Role.COORDINATOR, "nisc_coord2")
    c.nisc_analyst = member(c.nisc, Role.ANALYST, "nisc_analyst")
    c.electricity = Sector.objects.get(code="electricity")
    c.water = Sector.objects.get(code="water")
    c.power = OrganizationFactory(name_ja="ひかり電力", name_en="Hikari Power", sectors=[c.electricity])
    c.waterworks = OrganizationFactory(name_ja="しずく水道", name_en="Shizuku Water", sectors=[c.water])
    c.power_reporter = member(c.power, Role.REPORTER, "power_reporter")
    c.water_reporter = member(c.waterworks, Role.REPORTER, "water_reporter")
    c.police = Organization.objects.get(name_ja="警察庁")
    c.police_officer = member(c.police, Role.OFFICER, "police_officer")
    c.ceptoar_member = c.ceptoar_officer
    return c
