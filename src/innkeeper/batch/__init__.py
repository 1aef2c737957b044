"""Batch import (spec cdp.md §10): allocate, upload, process in the worker, error log."""
