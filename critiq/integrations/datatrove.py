"""A DataTrove filter that keeps documents whose critiq score reaches a threshold.

Importing this module needs DataTrove (``pip install 'critiq[datatrove]'``)::

    from critiq.integrations.datatrove import CritiqScoreFilter
    pipeline = [JsonlReader("data/"), CritiqScoreFilter("scorer/", threshold=0.5), JsonlWriter("kept/")]
"""

from __future__ import annotations

import os
from typing import Any

from critiq.errors import CritiqError
from critiq.scorer.base import Scorer

try:
    from datatrove.data import Document
    from datatrove.pipeline.filters.base_filter import BaseFilter
except ImportError as error:  # pragma: no cover - depends on the environment
    raise CritiqError("CritiqScoreFilter needs DataTrove: pip install 'critiq[datatrove]'") from error


class CritiqScoreFilter(BaseFilter):
    """Scores documents in batches, stores the score in ``doc.metadata[score_key]``, drops those below ``threshold``.

    ``text_field``: a metadata key holding the text to score; ``None`` scores ``doc.text``.
    The scorer is loaded lazily in each worker, so the step pickles small.
    """

    name = "🎯 CritiQ score"

    def __init__(
        self,
        scorer_dir: str | os.PathLike[str],
        threshold: float,
        text_field: str | None = None,
        *,
        score_key: str = "critiq_score",
        batch_size: int = 256,
        max_chars: int | None = None,
        exclusion_writer: Any = None,
    ) -> None:
        super().__init__(exclusion_writer=exclusion_writer, batch_size=batch_size)
        self.scorer_dir = str(scorer_dir)
        self.threshold = float(threshold)
        self.text_field = text_field
        self.score_key = score_key
        self.max_chars = max_chars
        self._scorer: Scorer | None = None

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = Scorer.load(self.scorer_dir)
        return self._scorer

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_scorer"] = None
        return state

    def _text(self, doc: Document) -> str:
        text = doc.text if self.text_field is None else doc.metadata.get(self.text_field)
        if not isinstance(text, str):
            raise CritiqError(f"document {doc.id}: metadata field '{self.text_field}' is not text")
        return text[: self.max_chars] if self.max_chars else text

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        scores = self.scorer.score([self._text(doc) for doc in batch])
        results: list[bool | tuple[bool, str]] = []
        for doc, score in zip(batch, scores, strict=True):
            doc.metadata[self.score_key] = float(score)
            results.append(True if score >= self.threshold else (False, "critiq_below_threshold"))
        return results

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]
