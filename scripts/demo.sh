#!/usr/bin/env bash
# README command 1: the end-to-end demo on the embedded model (no key, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh local
. .venv/bin/activate
critiq demo "$@"
