"""The web console at `/console/`: static files shipped in the wheel, served as they are.

The console is plain ES modules, a stylesheet and one HTML page under `dispatcher/api/console/`
(no build step, nothing fetched from elsewhere); it speaks only the public `/v1` API. Each
file is read once at start-up and answered with an ETag and `Cache-Control: no-cache`: a
browser revalidates every time (a 304 while unchanged), so after an upgrade it never mixes
modules of two versions. `GET /` and `GET /console` redirect to `/console/`. Every console
response carries the policy of `dispatcher.api.security`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from dispatcher.api.context import Handler
from dispatcher.api.security import content_security_policy
from dispatcher.api.sessions import frame_ancestors_for

ROOT = Path(__file__).resolve().parents[1] / "console"
PREFIX = "/console/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_files(root: Path = ROOT) -> dict[str, StaticFile]:
    """Every servable file under `root`, by its path below `/console/` (the page is `""`)."""
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        name = path.relative_to(root).as_posix()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files["" if name == "index.html" else name] = StaticFile(body, content_type, etag)
    return files


async def frame_ancestors(request: web.Request) -> Sequence[str]:
    """The origins allowed to embed the console for this request: for a portal session,
    its organization's `portalOrigins`; none otherwise (sessions.frame_ancestors_for)."""
    return await frame_ancestors_for(request)


def _serve(file: StaticFile) -> Handler:
    async def serve(request: web.Request) -> web.Response:
        headers = {
            "Cache-Control": "no-cache",
            "ETag": file.etag,
            "Content-Security-Policy": content_security_policy(await frame_ancestors(request)),
        }
        if request.headers.get("If-None-Match") == file.etag:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = file.content_type
        return web.Response(body=file.body, headers=headers)

    return serve


async def to_console(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": PREFIX})


def register(app: web.Application) -> None:
    app.router.add_get("/", to_console)
    app.router.add_get("/console", to_console)
    for name, file in load_files().items():
        app.router.add_get(PREFIX + name, _serve(file))
