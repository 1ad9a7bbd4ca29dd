"""The scripted stand-in for a chat client lives in the package (``critiq.testing.scripted``); re-exported here."""

from __future__ import annotations

from critiq.testing.scripted import Responder, ScriptedClient, user_text

__all__ = ["Responder", "ScriptedClient", "user_text"]
