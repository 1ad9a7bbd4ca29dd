"""Library messages name parameters (``top_k must be > 0``, ``out=PATH``); only the CLI writes flags (``--top-k``).

Scans the string literals of every ``raise``, every logging call and every error constructed under ``critiq/``
outside ``critiq/cli/``; ``as_flags`` turns the parameters back into the flags the CLI prints.
"""

from __future__ import annotations

import ast
import re

import pytest

from critiq.cli.flags import as_flags
from tests.paths import REPO

PACKAGE = REPO / "critiq"
FLAG = re.compile(r"(?<![\w-])--[a-z]")
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _messages(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []  # a raise's call is also a call: each literal once
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            found += [(node.lineno, text) for text in _strings(node.exc)]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            logging_call = isinstance(func, ast.Attribute) and name in LOG_METHODS
            if logging_call or name.endswith(("Error", "Exceeded", "Exists")):
                found += [(node.lineno, text) for arg in [*node.args, *node.keywords] for text in _strings(arg)]
    return sorted(set(found))


def test_no_library_message_names_a_flag() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "cli"):
            continue
        for line, text in _messages(ast.parse(path.read_text(encoding="utf-8"))):
            if FLAG.search(text):
                offenders.append(f"{path.relative_to(REPO)}:{line}: {text!r}")
    assert not offenders, "\n".join(offenders)


def test_the_scan_finds_a_flag_in_a_raise_and_a_log_call() -> None:
    tree = ast.parse('raise CritiqError(f"--top-k {k}")\nlog.warning("rerun with --resume")\nx = "--ok"\n')
    assert [text for _, text in _messages(tree) if FLAG.search(text)] == ["--top-k ", "rerun with --resume"]


@pytest.mark.parametrize(
    ("message", "flags"),
    [
        ("`top_k` must be > 0", "--top-k must be > 0"),
        ("choose exactly one of `top_k`, `fraction`, `tokens`", "choose exactly one of --top-k, --fraction, --tokens"),
        ("`fraction` must be in (0, 1]", "--fraction must be in (0, 1]"),
        ("top_k=50 exceeds the 6 items", "--top-k 50 exceeds the 6 items"),
        ("run_dir=/r: already holds a run; pass resume=True", "--out /r: already holds a run; pass --resume"),
        ("port=8080: cannot listen on 127.0.0.1:8080", "--port 8080: cannot listen on 127.0.0.1:8080"),
        ("rerun with resume=True to continue", "rerun with --resume to continue"),
        (
            "cache file is corrupt; delete it or pass cache_dir=None",
            "cache file is corrupt; delete it or pass --no-cache",
        ),
        ("truncated 3 texts to 20 characters (`max_chars`)", "truncated 3 texts to 20 characters (--max-chars)"),
        ("swap='x': use random, both or none", "--swap 'x': use random, both or none"),
        ("the top k texts of 500 tokens", "the top k texts of 500 tokens"),  # words are not parameters
    ],
)
def test_as_flags_writes_the_parameters_as_flags(message: str, flags: str) -> None:
    assert as_flags(message) == flags
