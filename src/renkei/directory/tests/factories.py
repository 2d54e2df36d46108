import factory

from renkei.directory.choices import OrganizationType, Role
from renkei.directory.models import ContactRoute, Membership, Organization, Sector, User


class SectorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sector
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"sector{n}")
    name_ja = factory.Sequence(lambda n: f"分野{n}")
    name_en = factory.Sequence(lambda n: f"Sector {n}")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        skip_postgeneration_save = True

    type = OrganizationType.OPERATOR
    name_ja = factory.Sequence(lambda n: f"組織{n}株式会社")
    name_en = factory.Sequence(lambda n: f"Organization {n} Ltd.")

    @factory.post_generation
    def sectors(self, create, extracted, **kwargs):
        if create and extracted:
            self.sectors.set(extracted)


class ContactRouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactRoute

    organization = factory.SubFactory(OrganizationFactory)
    kind = "email"
    value = factory.Sequence(lambda n: f"soc{n}@example.jp")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.jp")
    password = factory.django.Password("renkei-test-password")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.REPORTER


def member(organization: Organization, role: str = Role.REPORTER, username: str | None = None) -> User:
    """A user holding `role` in `organization`."""
    user = UserFactory(username=username) if username else UserFactory()
    MembershipFactory(user=user, organization=organization, role=role)
    return user
