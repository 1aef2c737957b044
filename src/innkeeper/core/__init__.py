"""Shared building blocks; depends on nothing else in innkeeper."""
