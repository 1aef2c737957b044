"""Test-only helpers: the frozen clock and database setup."""
