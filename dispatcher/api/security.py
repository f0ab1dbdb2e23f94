"""The security headers of every response, and the console's Content-Security-Policy.

Every response — API JSON, console files, errors, redirects — says `Referrer-Policy:
no-referrer` (a URL never leaves in a Referer) and `X-Content-Type-Options: nosniff` (a
browser renders only what the content type says). The console's pages add a strict
Content-Security-Policy: scripts, styles and fetches from this origin only, no inline script
or style, no eval, no plugins, no `<base>`, forms posting only here, and — unless a caller
names the origins allowed to embed the page — no framing at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

# Each directive once, in one place: a page that needs another frame-ancestors passes it.
_POLICY = (
    ("default-src", "'none'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data:"),
    ("connect-src", "'self'"),
    ("base-uri", "'none'"),
    ("form-action", "'self'"),
)


def content_security_policy(frame_ancestors: Sequence[str] = ()) -> str:
    """The console's policy; `frame_ancestors` lists the origins allowed to embed it
    (none: `'none'`, the page cannot be framed)."""
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    directives = [*_POLICY, ("frame-ancestors", ancestors)]
    return "; ".join(f"{name} {value}" for name, value in directives)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the headers every response carries."""
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def install(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
