"""The portal's router: every page under /portal, and its static files."""

from __future__ import annotations

from fastapi.responses import FileResponse, Response

from innkeeper.portal import auth, batches, dashboard, flows, guests, results, settings
from innkeeper.portal._web import STATIC_DIR, protect, redirect, router

# The page modules register their routes on import.
PAGES = (auth, guests, settings, dashboard, batches, flows, results)
_STATIC = {path.name: path for path in STATIC_DIR.iterdir() if path.suffix in (".js", ".css")}


@router.get("")
async def home() -> Response:
    return redirect("/portal/dashboard")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The portal's own scripts and styles (a fixed set: no path from the request reaches the disk)."""
    path = _STATIC.get(name)
    if path is None:
        return protect(Response("Not found", status_code=404, media_type="text/plain"))
    response = FileResponse(path)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


__all__ = ["PAGES", "router"]
