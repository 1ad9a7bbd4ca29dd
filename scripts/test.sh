#!/usr/bin/env bash
# README command 2: install everything the tests need into .venv and run the whole suite (the embedded-model tests
# included: --llm; `python -m pytest` alone runs the fast suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "local,scorer,ray,datatrove,dev"
. .venv/bin/activate
ruff check .
mypy
# --llm: the tests on the embedded model run too, on one of the two xdist workers (one llama.cpp server for all of
# them, marker group "embedded-model"); the other worker takes the rest. `-m "not slow"` leaves the slow group out.
python -m pytest --llm -n 2 --dist loadgroup "$@"
