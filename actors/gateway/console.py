"""The web console's HTTP side: its static files (``actors/gateway/ui/``, package data, no build step) at
``/ui/``, and ``/`` redirecting a browser there.

The files are public (a browser cannot send a bearer token when it navigates); everything they show comes
from the API through ``fetch`` with the token the user typed, so the console sees exactly what the token may
see. Files are served from a fixed list read at start: no path from the request reaches the file system.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

UI_DIR = Path(__file__).with_name("ui")
PREFIX = "/ui/"
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def is_public(path: str, accept: str) -> bool:
    """The console's files and the browser redirect need no credential."""
    return path == "/ui" or path.startswith(PREFIX) or (path == "/" and wants_html(accept))


def wants_html(accept: str) -> bool:
    return "text/html" in accept


class Console:
    """The console's files, read once: relative path -> (bytes, content type)."""

    def __init__(self, root: Path = UI_DIR) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file():
                kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                self.files[path.relative_to(root).as_posix()] = (path.read_bytes(), kind)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ui", self._to_ui)
        app.router.add_get(PREFIX + "{path:.*}", self._file)

    async def _to_ui(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(PREFIX)

    async def _file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["path"] or "index.html")
        if found is None:
            raise web.HTTPNotFound(text="no such file in the console")
        body, kind = found
        return web.Response(body=body, content_type=kind, headers=SECURITY_HEADERS)
