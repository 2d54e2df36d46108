"""What the main navigation offers from information sharing."""

from django import template

from renkei.sharing.selectors import may_see_dashboard

register = template.Library()


@register.filter
def sees_dashboard(user) -> bool:
    """Whether the trends dashboard is for `user` (the national centre and the ministries)."""
    return may_see_dashboard(user)
