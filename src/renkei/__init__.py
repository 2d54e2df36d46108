"""Renkei (連携): the platform that runs a national critical-infrastructure protection action plan."""

__version__ = "0.1.0"
