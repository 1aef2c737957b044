"""Fixtures of the trigger tests: a real SMTP server and the outbound client that delivers to it."""

from tests.factories.mail import outbound, smtp

__all__ = ["outbound", "smtp"]
