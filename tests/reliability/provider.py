"""A local provider for the first-run tests: OpenAI's rules and bodies (tests.fakes.openai_server) behind a switch
that makes it answer every request with one refusal (a missing-credentials 500, say) until the test lifts it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import openai_server
from tests.fakes.serving import AppServer, json_body

KEY = "sk-local-first-run-key"


@dataclass
class Provider:
    """What the server saw (``hits``: every chat request, refused or not) and what it answers (``refusal``)."""

    state: openai_server.State = field(
        default_factory=lambda: openai_server.State(api_key=KEY, models={"stub": openai_server.Model()})
    )
    refusal: tuple[int, dict[str, Any]] | None = None
    hits: int = 0
    url: str = ""

    @property
    def api_base(self) -> str:
        return self.url + "/v1"


def build_app(provider: Provider) -> Any:
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        provider.hits += 1
        if provider.refusal is not None:
            status, body = provider.refusal
            return web.json_response(body, status=status)
        body = await json_body(request)
        try:
            model = openai_server.check(body, request.headers.get("Authorization"), provider.state)
        except openai_server.Refusal as refusal:
            provider.state.refused.append({"status": refusal.status, **refusal.body["error"]})
            return web.json_response(refusal.body, status=refusal.status)
        provider.state.requests.append(body)
        return web.json_response(openai_server.reply(body, model))

    async def models(request: web.Request) -> web.Response:
        names = [*openai_server.MODELS, "stub"]
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "system"} for name in names]
        return web.json_response({"object": "list", "data": data})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    return app


@contextmanager
def running_provider() -> Iterator[Provider]:
    provider = Provider()
    with AppServer(build_app(provider)) as server:
        provider.url = server.url
        yield provider
