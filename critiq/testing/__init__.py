"""Test helpers shipped with critiq: local provider servers, a fault-injecting stub server, a scripted client.

Production code never imports this package.
"""

from critiq.testing.scripted import ScriptedClient

__all__ = ["ScriptedClient"]
