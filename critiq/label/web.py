"""The labelling page on aiohttp.web: a static page (package data) and a small JSON API over a session.

Everything lives under a per-launch secret path, ``/KEY/`` (the URL ``critiq label`` prints): a request without the
key gets 403, so another web page can neither read the texts nor take pairs, and a DNS-rebound name learns nothing.
``POST KEY/api/next`` gives a tab its pair (no GET changes state); ``POST KEY/api/answer`` and ``POST KEY/api/undo``
change the session. The page inserts every string as text, and a content security policy allows only the page's
own script and style. Requests must name this server as their host, for every bind address (no DNS rebinding), and
POSTs must be JSON (no cross-site forms); a body nested too deep is a 400.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from critiq.errors import CritiqError, InputError
from critiq.label.session import Issue, LabelSession, Refused

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
PAGE_FILES = {
    "": ("index.html", "text/html"),
    "app.js": ("app.js", "text/javascript"),
    "style.css": ("style.css", "text/css"),
}
TAB = re.compile(r"[A-Za-z0-9_-]{1,64}")
SESSION: web.AppKey[LabelSession] = web.AppKey("session", LabelSession)
SECRET: web.AppKey[str] = web.AppKey("secret", str)
HOSTS: web.AppKey[set[str]] = web.AppKey("hosts", set)
ANY_IP_PORT: web.AppKey[list[int]] = web.AppKey("any_ip_port", list)  # beyond loopback: any IP literal, this port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_file(name: str) -> str:
    """A file of the page, from the package data under ``critiq/label/static/``."""
    return (resources.files("critiq.label") / "static" / name).read_text(encoding="utf-8")


def make_app(session: LabelSession, *, secret: str | None = None) -> web.Application:
    """The aiohttp application serving ``session`` under ``/SECRET/`` (default: a new random secret)."""
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[SESSION] = session
    app[SECRET] = secret or secrets.token_urlsafe(24)
    app[HOSTS] = set()
    app[ANY_IP_PORT] = []
    app.router.add_get("/favicon.ico", _empty)  # before /{key}, which would match it too
    for route, (name, content_type) in PAGE_FILES.items():
        app.router.add_get("/{key}/" + route, _static(page_file(name), content_type))
    app.router.add_get("/{key}", _to_page)
    app.router.add_post("/{key}/api/next", _next)
    app.router.add_post("/{key}/api/answer", _answer)
    app.router.add_post("/{key}/api/undo", _undo)
    return app


def page_path(app: web.Application) -> str:
    """The path of the page, secret included: ``/KEY/``."""
    return f"/{app[SECRET]}/"


async def serve(app: web.Application, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Listen on ``host:port`` (0 = any free port), call ``ready(url)``, and serve until cancelled."""
    # Ctrl-C stops at once: every answer is saved when it is posted, and an open tab's keep-alive connection would
    # otherwise hold aiohttp's graceful shutdown for its default 60 s
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        raise CritiqError(f"port={port}: cannot listen on {host}:{port} ({reason})") from None
    bound = runner.addresses[0][1]
    app[HOSTS].update(_allowed_hosts(host, bound))
    if not _is_loopback(host):
        app[ANY_IP_PORT].append(bound)
    shown = f"[{host}]" if ":" in host else host
    try:
        ready(f"http://{shown}:{bound}{page_path(app)}")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def _allowed_hosts(host: str, port: int) -> set[str]:
    """Host headers accepted (lower case): the loopback names, the bind name, and beyond loopback this machine's."""
    names = {"127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]"}
    if not _is_loopback(host):
        names |= {socket.gethostname(), socket.getfqdn()}
    return {f"{name.lower()}:{port}" for name in names if name}


def _host_ok(request: web.Request) -> bool:
    """Whether the Host header names this server: a DNS-rebound name never does (IP literals do, beyond loopback)."""
    hosts = request.app[HOSTS]
    if not hosts:  # an application not started by serve() (a test client): no bind, no name to check
        return True
    header = (request.host or "").lower()
    if header in hosts:
        return True
    name, _, port = header.rpartition(":")
    if not request.app[ANY_IP_PORT] or port != str(request.app[ANY_IP_PORT][0]):
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _key_ok(request: web.Request) -> bool:
    if request.path == "/favicon.ico":
        return True
    key = request.match_info.get("key")
    return key is not None and secrets.compare_digest(key.encode(), request.app[SECRET].encode())


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _host_ok(request):
        response: web.StreamResponse = web.json_response({"error": "unexpected Host header"}, status=403)
    elif not _key_ok(request):
        response = web.json_response({"error": "open the URL critiq label printed (it holds the key)"}, status=403)
    elif request.method == "POST" and request.content_type != "application/json":
        response = web.json_response({"error": "send JSON"}, status=415)
    else:
        try:
            response = await handler(request)
        except web.HTTPException as error:
            response = web.json_response({"error": error.reason}, status=error.status)
        except Refused as error:
            response = web.json_response({"error": str(error)}, status=409)
        except InputError as error:
            response = web.json_response({"error": str(error)}, status=400)
        except CritiqError as error:  # the ranker's model refused or is unreachable
            log.error("%s", error)
            response = web.json_response({"error": str(error)}, status=502)
    response.headers.update(HEADERS)
    return response


def _static(body: str, content_type: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type=content_type, charset="utf-8")

    return handler


async def _empty(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def _to_page(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": page_path(request.app)})


async def _next(request: web.Request) -> web.StreamResponse:
    session = request.app[SESSION]
    body = await _json(request)
    return _reply(session, await session.next(_tab(body.get("tab"))))


async def _answer(request: web.Request) -> web.StreamResponse:
    session = request.app[SESSION]
    body = await _json(request)
    issue = await session.answer(
        _tab(body.get("tab")),
        _text(body, "ticket"),
        _text(body, "id"),
        _text(body, "choice"),
        str(body.get("note") or ""),
    )
    return _reply(session, issue)


async def _undo(request: web.Request) -> web.StreamResponse:
    session = request.app[SESSION]
    body = await _json(request)
    pair_id = body.get("id")
    if pair_id is not None and not isinstance(pair_id, str):
        raise InputError("id must be a string or null")
    return _reply(session, await session.undo(_tab(body.get("tab")), pair_id))


def _reply(session: LabelSession, issue: Issue | None) -> web.StreamResponse:
    return web.json_response(
        {
            "pair": issue.view() if issue else None,
            "progress": session.progress(),
            "task": session.task,
            "annotator": session.annotator,
        }
    )


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InputError("malformed JSON") from None
    except RecursionError:
        raise InputError("JSON nested too deep") from None
    if not isinstance(body, dict):
        raise InputError("expected a JSON object")
    return body


def _tab(value: Any) -> str:
    if not isinstance(value, str) or not TAB.fullmatch(value):
        raise InputError("tab must be 1-64 letters, digits, '-' or '_'")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string")
    return value
