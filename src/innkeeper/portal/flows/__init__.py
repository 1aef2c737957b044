"""Experiences and experiments: lists, the Details tab (friendly id, how to call), create/edit, Start /
Pause / Complete, and Preview for guest (spec personalize.md §1, §7; the user's "Experience => Full
Stack, open it, Details tab for the friendly id").

The page modules register their routes on import; ``_edit`` comes before ``_details`` so
``/portal/flows/new`` is matched before ``/portal/flows/{ref}``.
"""

from __future__ import annotations

from innkeeper.portal.flows import _lists

# isort: split
from innkeeper.portal.flows import _edit

# isort: split
from innkeeper.portal.flows import _details

PAGES = (_lists, _edit, _details)

__all__ = ["PAGES"]
