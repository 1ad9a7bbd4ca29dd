#!/usr/bin/env bash
# README command 2: install everything the tests need into .venv and run the whole suite (the embedded-model tests
# included: --llm; `python -m pytest` alone runs the fast suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "local,scorer,ray,datatrove,dev"
. .venv/bin/activate
ruff check .
mypy
python -m pytest --llm "$@"  # --llm: the tests on the embedded model run too
