"""What a command costs before and around its work: wall and CPU seconds of short critiq commands, least of N runs.

    python bench/startup.py [--repeats 3]

Runs, each in a fresh process with this interpreter: ``critiq --help``; ``critiq kb search readability``; ``critiq
score`` of 50 bundled corpus records with an n-gram scorer trained here; ``critiq mine --model gpt-4o`` with no
OpenAI key (the one-line error); ``critiq mine --dry-run`` against a self-hosted server; and ``critiq mine`` of the
first 12 bundled code pairs with 8 given criteria and 3 iterations against ``tests.fakes.stub_server --vary``
(docs/scaling.md's run). CPU is user + system of the command and its children; on a busy machine wall time is
mostly the queue for a core, CPU time is what the command costs an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from critiq.llm.ports import free_port  # noqa: E402

EXAMPLES = ROOT / "examples" / "data"
CRITERIA = [
    ("correctness", "The code computes what the task asks, including edge cases."),
    ("readability", "Names, layout and structure make the code easy to follow."),
    ("documentation", "Docstrings and comments explain intent where it is not obvious."),
    ("robustness", "Bad input is checked and reported instead of failing later."),
    ("efficiency", "The code avoids needless work for the input sizes it will see."),
    ("idiom", "The code uses the language's idioms and standard library well."),
    ("testing", "The code is easy to test, with small pure functions."),
    ("naming", "Each name says what the value holds."),
]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="critiq-startup-"))
    critiq = [sys.executable, "-m", "critiq.cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env |= {"CRITIQ_CACHE_DIR": str(work / "cache"), "COLUMNS": "200"}
    pairs = EXAMPLES / "code_pairs.jsonl"
    (work / "pairs.jsonl").write_text("".join(pairs.read_text().splitlines(keepends=True)[:12]))
    (work / "corpus.jsonl").write_text("".join((EXAMPLES / "code_corpus.jsonl").read_text().splitlines(True)[:50]))
    (work / "criteria.json").write_text(json.dumps([{"name": n, "description": d} for n, d in CRITERIA]))
    subprocess.run([*critiq, "train-scorer", str(pairs), "--kind", "ngram", "--out", "scorer"], cwd=work, env=env,
                   check=True, capture_output=True)  # fmt: skip
    port = free_port()
    stub = subprocess.Popen([sys.executable, "-m", "tests.fakes.stub_server", "--port", str(port), "--vary"], cwd=ROOT)
    try:
        time.sleep(2.0)
        api = ["--model", "openai/stub", "--api-base", f"http://127.0.0.1:{port}/v1"]
        mine = ["mine", "pairs.jsonl", "--init-criteria", "criteria.json", "--n-criteria", "8", "--iterations", "3"]
        mine += ["--no-kb", "--final-threshold", "0", "--no-cache"]
        no_key = ["--model", "gpt-4o"]
        score = ["score", "corpus.jsonl", "--scorer", "scorer", "--out", "s.parquet", "--force"]
        commands = {
            "critiq --help": ["--help"],
            "critiq kb search readability": ["kb", "search", "readability"],
            "critiq score (50 records, n-gram scorer)": score,
            "critiq mine --model gpt-4o, no key (the error line)": ["mine", "pairs.jsonl", "--out", "k", *no_key],
            "critiq mine --dry-run, self-hosted server": ["mine", "pairs.jsonl", "--out", "dry", "--dry-run", *api],
            "critiq mine, stub server (12 pairs, 8 criteria, 3 iterations)": [*mine, "--out", "RUN", *api],
        }
        for name, words in commands.items():
            runs = []
            for repeat in range(args.repeats):
                words_now = [w.replace("RUN", f"run{repeat}") for w in words]
                runs.append(timed([*critiq, *words_now], work, env))
            wall = min(r[0] for r in runs)
            cpu = min(r[1] for r in runs)
            codes = sorted({r[2] for r in runs})
            print(f"{name:62s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  exit {codes}", flush=True)
    finally:
        stub.kill()
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
