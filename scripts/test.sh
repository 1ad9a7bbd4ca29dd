#!/usr/bin/env bash
# README command 2: install everything the tests need into .venv and run the whole suite (the embedded-model tests
# included: --llm; `python -m pytest` alone runs the fast suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "local,scorer,ray,datatrove,dev"
. .venv/bin/activate
ruff check .
mypy
# The embedded-model tests (marker llm) one after another in one process, on one llama.cpp server; beside it the
# rest on two pytest-xdist workers (most of them wait on subprocesses and local servers). pytest-xdist's
# --dist loadgroup kept no group on one worker with this pytest, so two llama.cpp servers competed for the cores.
# The embedded-model run's output is shown when it ends.
# Bytecode is cached (some shells export PYTHONDONTWRITEBYTECODE=1: then every `critiq` subprocess compiled the
# package again, and pytest rewrote every test module on each run).
unset PYTHONDONTWRITEBYTECODE
# The embedded server uses both cores: its threads sleep while they wait (critiq.llm.local.WAIT_POLICY), so beside
# the other workers they cost no more than one thread, and once those finish they are 1.2x faster than one.
llm_log=$(mktemp)
python -m pytest --llm -m llm "$@" >"$llm_log" 2>&1 &
llm_run=$!
trap 'kill "$llm_run" 2>/dev/null || true; rm -f "$llm_log"' EXIT
status=0
python -m pytest -m "not llm" -n 2 "$@" || status=$?
wait "$llm_run" || status=$?
echo "--- the embedded-model tests (pytest --llm -m llm) ---"
cat "$llm_log"
exit "$status"
