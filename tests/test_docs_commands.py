"""The README's and docs/quickstart.md's shell blocks, extracted from the markdown and run as written.

A command that names a hosted model runs on the embedded model instead (its ``--model`` dropped: with no model
named, critiq uses the embedded model whatever keys are exported, which the README's own ``export OPENAI_API_KEY``
line puts to the test), with small data and small sizes appended (``--n-criteria 1 --iterations 0``: the last value
of a flag wins). Commands that cannot run here are skipped for a stated reason (an interactive page, a GPU server, the
network, the scripts that install a venv and run this suite). A doc change that breaks a command fails this test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from critiq.llm.local import KEY_VARIABLES, LOCAL_MODEL
from tests.embedded_runs import ABLATE_FLAGS, ABLATE_TEST, ABLATE_TRAIN
from tests.paths import EXAMPLES, REPO

FENCE = re.compile(r"^```(?:bash|sh|shell|console)\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)
MODEL_FLAGS = ("--model", "--manager-model", "--worker-model")
# why a command of the docs is not run here (matched against its first words), and whether the commands after it in
# its block still can (`critiq label`'s output is among the small inputs; a vLLM server's is not)
NOT_HERE = {
    "bash scripts/": ("installs .venv and runs the whole suite (CI runs it)", False),
    "critiq label": ("serves a page a person answers (tests/label drive it in a browser)", False),
    "critiq serve": ("starts a vLLM server (a GPU machine)", True),
    "hf ": ("uploads to the Hub (network)", False),
    "pip ": ("installs packages", False),
}
NETWORK = ("hf://", "s3://", "gs://")
# small sizes for the embedded model on a shared CPU, appended to the command as written (the last value wins)
# (`critiq ablate` as the ablation test runs it, on its split: those answers are in the session's cache by then)
SMALL = {
    "mine": ["--n-criteria", "1", "--iterations", "0", "--kb-candidates", "1", "--final-threshold", "0"],
    "annotate": ["--max-pairs", "6"],
    "ablate": ABLATE_FLAGS,
}


def shell_blocks(markdown: Path) -> list[list[str]]:
    """The commands of each fenced shell block of a markdown file: continuation lines joined, comments dropped,
    quoting kept."""
    blocks = []
    for block in FENCE.findall(markdown.read_text(encoding="utf-8")):
        joined = re.sub(r"\\\n\s*", " ", block)
        words = (shlex.split(line, comments=True) for line in joined.splitlines())
        blocks.append([shlex.join(w) for w in words if w])
    return blocks


def shell_commands(markdown: Path) -> list[str]:
    """Every command of the file's shell blocks, in order."""
    return [command for block in shell_blocks(markdown) for command in block]


@dataclass
class Step:
    words: list[str]
    skip: str | None = None  # why it is not run here
    ends_block: bool = False  # the commands after it in its block need what it would have made


def plan(command: str) -> Step:
    """What runs for one documented command: as written, on the embedded model, small; or why it is skipped."""
    words = shlex.split(command)
    for start, (reason, ends_block) in NOT_HERE.items():
        if command.startswith(start):
            return Step(words, reason, ends_block)
    if any(word.startswith(NETWORK) for word in words):
        return Step(words, "reads or writes a remote store (network)", ends_block=True)
    if "--api-base" in words:
        return Step(words, "talks to a server the docs start (vLLM)", ends_block=True)
    if words[0] != "critiq":
        return Step(words)
    kept: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
        elif word in MODEL_FLAGS:
            skip_next = True  # the hosted model named: the embedded model runs it instead
        else:
            kept.append(word)
    return Step(kept + SMALL.get(words[1], []))


def _data(work: Path) -> None:
    """Small inputs under the names the docs use (the bundled code pairs and corpus)."""
    pairs = (EXAMPLES / "code_pairs.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    corpus = (EXAMPLES / "code_corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (work / "runs").mkdir(parents=True)
    (work / "pairs.jsonl").write_text("".join(pairs[:6]), encoding="utf-8")
    (work / "runs" / "pairs.jsonl").write_text("".join(pairs[:6]), encoding="utf-8")  # what `critiq label` makes
    (work / "train.jsonl").write_text("".join(pairs[ABLATE_TRAIN]), encoding="utf-8")
    (work / "test.jsonl").write_text("".join(pairs[ABLATE_TEST]), encoding="utf-8")
    (work / "corpus.jsonl").write_text("".join(corpus[:24]), encoding="utf-8")


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    bin_dir = str(Path(sys.executable).parent)  # `critiq` and `python` of this venv, as a user's shell finds them
    return env | {
        "HOME": str(work / "home"),  # its own ~/.cache/critiq
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "COLUMNS": "300",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }


def _run(step: Step, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    words = step.words
    if words[0] == "critiq":  # the console script's own main(), with this interpreter (the checkout under test)
        words = [sys.executable, "-m", "critiq.cli.main", *words[1:]]
    # its own process group: on a timeout the embedded model's server it started goes too, not only the command
    with subprocess.Popen(
        words, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(words, process.returncode, stdout, stderr)


def _run_doc(markdown: Path, work: Path) -> dict[Path, list[str]]:
    """Run each shell block's commands in order, each block in a fresh folder of ``work`` with the small inputs (a
    block is one session: its ``export`` holds for the commands after it). Returns what ran, by folder; a failing
    command fails the test."""
    ran: dict[Path, list[str]] = {}
    for number, block in enumerate(shell_blocks(markdown)):
        steps = [(command, plan(command)) for command in block]
        if all(step.skip or command.startswith("export ") for command, step in steps):
            continue
        folder = work / f"block{number}"
        folder.mkdir()
        _data(folder)
        env = _env(folder) | {"HOME": str(work / "home")}  # one request cache for the file: a repeated command is free
        for command, step in steps:
            if command.startswith("export "):
                name, _, value = command.split(" ", 1)[1].partition("=")
                env[name] = value  # as written: the commands after it run with that variable set
                continue
            if step.ends_block:
                break
            if step.skip:
                continue
            result = _run(step, folder, env)
            assert result.returncode == 0, f"{markdown.name}: `{command}` failed:\n{result.stderr[-3000:]}"
            assert "Traceback" not in result.stderr
            ran.setdefault(folder, []).append(command)
    return ran


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("doc", ["README.md", "docs/quickstart.md"])
def test_the_docs_shell_commands_run_as_written(tmp_path: Path, doc: str, local_server: object) -> None:
    """Every command that needs the embedded model uses the session's server (``CRITIQ_LOCAL_API_BASE``)."""
    ran = _run_doc(REPO / doc, tmp_path)
    # the block that takes a run from mine to selection, on the embedded model (a key exported or not)
    folder, commands = next((f, c) for f, c in ran.items() if (f / "runs" / "selected.jsonl").exists())
    words = {shlex.split(c)[1] for c in commands if c.startswith("critiq ")}
    assert {"mine", "annotate", "train-scorer", "score", "select"} <= words, commands
    criteria = json.loads((folder / "runs" / "mine" / "criteria.json").read_text())
    assert criteria["models"]["manager"] == criteria["models"]["worker"] == LOCAL_MODEL
    assert (folder / "runs" / "selected.jsonl").stat().st_size > 0
    if doc == "README.md":  # its report and knowledge-base commands ran on what the others wrote
        assert {"report", "kb", "ablate"} <= words
        assert (folder / "runs" / "report.html").exists()


def test_the_plan_drops_hosted_models_and_skips_what_cannot_run_here() -> None:
    """The rules above, on the README's own commands (no model is called)."""
    steps = {c: plan(c) for c in shell_commands(REPO / "README.md")}
    mine = next(s for c, s in steps.items() if c.startswith("critiq mine pairs.jsonl --out runs/mine --model gpt-4o"))
    assert "--model" not in mine.words and "gpt-4o" not in mine.words and mine.skip is None
    assert mine.words[-8:] == SMALL["mine"]
    assert all(s.skip for c, s in steps.items() if c.startswith(("critiq label", "bash scripts/", "critiq serve")))
    annotate_vllm = next(s for c, s in steps.items() if "--api-base" in c and c.startswith("critiq annotate"))
    assert annotate_vllm.skip
    assert sum(s.skip is None for s in steps.values()) >= 8  # mine, annotate, train-scorer, score, select, ...


def test_the_quickstart_dataset_check_reads_a_rescored_folder_afresh(tmp_path: Path) -> None:
    """docs/quickstart.md's `python -c "...load_dataset(folder...)"` line, as written, after re-scoring the folder."""
    check = next(c for c in shell_commands(REPO / "docs" / "quickstart.md") if "load_dataset" in c)
    _data(tmp_path)
    env = _env(tmp_path)
    critiq = [sys.executable, "-m", "critiq.cli.main"]

    def cli(*args: str) -> None:
        result = subprocess.run([*critiq, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]

    cli("train-scorer", str(EXAMPLES / "code_pairs.jsonl"), "--kind", "ngram", "--out", "runs/scorer")
    rows = []
    for limit in ("10", "7"):  # score into the same folder twice: the second has fewer rows
        cli("score", "corpus.jsonl", "--scorer", "runs/scorer", "--out", "runs/fineweb-scored", "--limit", limit)
        shown = subprocess.run(shlex.split(check), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert shown.returncode == 0, shown.stderr[-2000:]
        rows.append(re.search(r"num_rows: (\d+)", shown.stdout).group(1))  # type: ignore[union-attr]
    assert rows == ["10", "7"]
