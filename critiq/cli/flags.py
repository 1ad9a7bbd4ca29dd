"""Library messages name parameters (``top_k``, ``out=PATH``); the command line writes them as its flags."""

from __future__ import annotations

import logging
import re

# library messages name parameters (``api_base=``, ```top_k```); the command line names the flags that set them
_NAMED = [
    *("model", "manager_model", "worker_model", "api_base", "api_key_env", "concurrency", "cache_dir"),
    *("max_requests", "max_cost", "timeout", "max_retries", "schema_mode"),
    *("max_row_bytes", "out", "criteria", "batch_size", "max_chars", "shard_rows", "limit", "skip", "config"),
    *("top_k", "fraction", "tokens", "temperature", "engine", "backend", "swap", "judge", "language", "port"),
    *("run_dir", "prompts_dir", "kb_path", "methods"),
]
# parameters whose flag differs
_RENAMED = {"run_dir": "--out", "prompts_dir": "--prompts", "kb_path": "--kb", "methods": "--method"}
_PARAMETER = re.compile(r"(?<![\w-])(" + "|".join(_NAMED) + r")=")
_QUOTED = re.compile(r"`([a-z][a-z0-9_]*)`")  # a parameter named without a value: ```top_k` must be > 0``
_SWITCHES = {"force=True": "--force", "resume=True": "--resume", "cache_dir=None": "--no-cache"}
_SWITCHES |= {"rank_by='criteria'": "--rank-by criteria"}
_SWITCH = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, _SWITCHES)) + r")")


def _flag(name: str) -> str:
    return _RENAMED.get(name) or "--" + name.replace("_", "-")


def as_flags(message: str) -> str:
    """``message`` with the parameters it names written as the flags that set them: ``api_key_env=X`` as
    ``--api-key-env X``, ```top_k``` as ``--top-k``, ``resume=True`` as ``--resume``, ``cache_dir=None`` as
    ``--no-cache``."""

    def flag(match: re.Match[str]) -> str:
        rest = match.string[match.end() :]
        return _flag(match.group(1)) + ("" if not rest or rest[0] in " ),;" else " ")

    message = _SWITCH.sub(lambda match: _SWITCHES[match.group(1)], message)
    message = _QUOTED.sub(lambda match: _flag(match.group(1)), message)
    return _PARAMETER.sub(flag, message)


class FlagsInLogs(logging.Filter):
    """A log handler's filter that writes the parameters a library log line names as flags (see :func:`as_flags`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        flagged = as_flags(message)
        if flagged != message:
            record.msg, record.args = flagged, None
        return True
