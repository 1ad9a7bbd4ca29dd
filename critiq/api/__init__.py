"""The user surface: one call per pipeline step (``critiq.mine``, ``critiq.annotate``... re-exported by :mod:`critiq`).

Each call takes in-memory data (pairs, dicts, a pandas DataFrame, a ``datasets.Dataset``) or any source the CLI
reads, opens and closes what it needs, writes its own record when given an output, and returns a typed result.
"""
