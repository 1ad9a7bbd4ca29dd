"""For testing your own code that uses critiq: :class:`ScriptedClient`, a chat client that answers from a function.

Pass it wherever critiq takes a chat client (``CritiQFlow(manager=..., worker=...)``, ``Worker(client)``)::

    from critiq.testing import ScriptedClient

    client = ScriptedClient(lambda messages, schema: {"verdict": "A"})  # a dict, a JSON string, or None (a failure)

Each call is one scripted answer, parsed against the request's schema (an invalid answer is a parse failure);
``client.calls`` holds every request's messages and ``client.usage`` counts them. Production code never imports
this package.
"""

from critiq.testing.scripted import Responder, ScriptedClient, user_text

__all__ = ["Responder", "ScriptedClient", "user_text"]
