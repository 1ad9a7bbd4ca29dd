"""A :class:`Session`: the manager and worker clients opened once, for a notebook that makes several calls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, cast

from critiq.api.inputs import Model, as_settings
from critiq.errors import InputError
from critiq.llm.session import Clients, ModelSettings, open_clients
from critiq.llm.usage import Usage

if TYPE_CHECKING:
    from critiq.llm.client import LLMClient
    from critiq.llm.protocol import ChatClient


class Session:
    """Clients (and the embedded model's server, when no model is named) that stay open across calls.

    Every call opens and closes its own clients; pass ``session=`` to reuse these instead, and close the session
    when done (or use it as a context manager)::

        with critiq.Session("gpt-4o") as session:
            result = critiq.mine(pairs, session=session)
            labels = critiq.annotate(corpus, result, session=session, corpus=True)
    """

    def __init__(self, model: Model = None, *, api_base: str | None = None) -> None:
        self.settings: ModelSettings = as_settings(model, api_base)
        self._stack = ExitStack()
        self.clients: Clients = self._stack.enter_context(open_clients(self.settings))

    @classmethod
    def of(cls, manager: ChatClient, worker: ChatClient | None = None) -> Session:
        """A session on clients you built (a :class:`critiq.testing.ScriptedClient` in your tests, your own client):
        the steps use ``manager`` and ``worker`` (default: ``manager``); closing the session leaves them as they are.

        Example::

            session = critiq.Session.of(ScriptedClient(lambda messages, schema: {"verdict": "A"}))
            critiq.mine(pairs, session=session, n_criteria=1)
        """
        session = cls.__new__(cls)
        model = manager.config.model if hasattr(manager, "config") else None
        session.settings = ModelSettings(model=model)
        session._stack = ExitStack()
        usage = getattr(manager, "usage", None) or Usage()
        chosen = worker or manager
        session.clients = Clients(manager=cast("LLMClient", manager), worker=cast("LLMClient", chosen), usage=usage)
        return session

    def close(self) -> None:
        """Close the clients and stop the embedded model's server, if one was started."""
        self._stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


@contextmanager
def clients_for(model: Model, api_base: str | None, session: Session | None) -> Iterator[Clients]:
    """The session's clients, else new ones for ``model`` (closed on exit)."""
    if session is not None:
        settings_for(model, api_base, session)
        yield session.clients
        return
    with open_clients(as_settings(model, api_base)) as clients:
        yield clients


def settings_for(model: Model, api_base: str | None, session: Session | None) -> ModelSettings:
    """The model settings of a call: its session's, else ``model=`` and ``api_base=``'s (not both)."""
    if session is None:
        return as_settings(model, api_base)
    if model is not None or api_base is not None:
        raise InputError("pass either session= or model= / api_base=: the session's clients have their model")
    return session.settings
