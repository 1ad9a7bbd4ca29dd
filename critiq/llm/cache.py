"""A persistent request cache in sqlite: any rerun of finished work costs zero requests."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from critiq.errors import CritiqError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CACHE_DIR_VARIABLE = "CRITIQ_CACHE_DIR"


def default_cache_dir() -> Path:
    """The request cache of a run that names none: ``$CRITIQ_CACHE_DIR``, else ``~/.cache/critiq`` (read now)."""
    configured = os.environ.get(CACHE_DIR_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "critiq"


def request_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any], sample: int = 0) -> str:
    """Hash of what determines an answer: model, messages, sampling params and sample index.

    The server address and the key are left out on purpose: the same model behind another port (the embedded
    server picks a free one each start) gives the same answers, and secrets never reach the cache.
    """
    payload = json.dumps(
        {"model": model, "messages": messages, "params": params, "sample": sample},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class RequestCache:
    """sqlite (WAL, busy timeout) so that several processes can share one cache directory."""

    def __init__(self, directory: str | Path, filename: str = "requests.sqlite") -> None:
        self.path = Path(directory) / filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connect()  # fail early on a corrupt file

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        deadline = time.monotonic() + 30.0
        while True:
            try:
                conn, row = self._open()
                break
            except sqlite3.OperationalError as error:
                # switching a new file to WAL while another process does the same can fail with "locked" at once,
                # without waiting for the busy timeout: wait and try again
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise CritiqError(f"{self.path}: cache unavailable ({error}); pass cache_dir=None") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as error:
                raise CritiqError(
                    f"{self.path}: cache file is corrupt ({error}); delete it or pass cache_dir=None"
                ) from None
        if row and row[0] != str(SCHEMA_VERSION):
            raise CritiqError(f"{self.path}: cache schema {row[0]} is not {SCHEMA_VERSION}; use another `cache_dir`")
        self._local.conn = conn
        return conn

    def _open(self) -> tuple[sqlite3.Connection, Any]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            return conn, conn.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        except BaseException:
            conn.close()
            raise

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            row = self._connect().execute("SELECT value FROM responses WHERE key=?", (key,)).fetchone()
        except sqlite3.DatabaseError as error:
            raise CritiqError(f"{self.path}: cache read failed ({error}); delete it or pass cache_dir=None") from None
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            log.warning("%s: unreadable cache entry %s…; asking again", self.path, key[:12])
            return None  # the fresh answer replaces it
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        try:
            self._connect().execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                (key, json.dumps(value, ensure_ascii=False), time.time()),
            )
        except sqlite3.DatabaseError as error:
            raise CritiqError(f"{self.path}: cache write failed ({error})") from None

    def __len__(self) -> int:
        count: int = self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        return count

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
