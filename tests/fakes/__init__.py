"""The tests' fakes: local provider servers applying each provider's documented rules (``openai_server``,
``anthropic_server``, ``ollama_server``, served by ``serving.AppServer``), the fault-injecting OpenAI-compatible stub
server (``stub_server``), schema-valid answers (``answers``) and CLI runs forked from a warm process
(``forked_cli``). The scripted client is the package's
(:mod:`critiq.testing`, for users' tests too); re-exported here.
"""

from __future__ import annotations

from critiq.testing.scripted import Responder, ScriptedClient, user_text

__all__ = ["Responder", "ScriptedClient", "user_text"]
