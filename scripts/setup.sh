#!/usr/bin/env bash
# Create .venv (if needed) and install critiq with the extras named in $1 (default: local).
# torch is pinned to the CPU build first so that no multi-GB CUDA build is pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
if [[ "$extras" == *scorer* ]] && ! python -c "import torch" 2>/dev/null; then
  pip install --quiet "torch==2.13.0"
fi
if ! python -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python (about 7 minutes on 2 cores the first time; pip caches the wheel)" >&2
fi
pip install --quiet -e ".[${extras}]"
