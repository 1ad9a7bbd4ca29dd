"""Test helpers shipped with critiq: a fault-injecting OpenAI-compatible server."""
