"""Innkeeper: a self-hosted, Sitecore CDP / Personalize compatible customer data platform."""

__version__ = "0.1.0"
