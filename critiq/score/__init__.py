"""Step 4 of the pipeline: score a corpus and select from it.

Table scoring is at the bottom (:mod:`~critiq.score.table`); the engines above it are :mod:`~critiq.score.local`
(batch by batch in this process) and :mod:`~critiq.score.ray` (Ray Data); :mod:`~critiq.score.corpus` picks one
(``score_corpus``), :mod:`~critiq.score.scored` reads a scored output back and :mod:`~critiq.score.selection` writes a
selection from it (``select_file``).

This package imports nothing on its own (import time, and so ``critiq.score`` can also name a function at the top):
import from its modules.
"""
