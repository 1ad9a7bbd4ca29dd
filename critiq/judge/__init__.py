"""Judging examples under criteria, below every step that judges (:mod:`critiq.mine`, :mod:`critiq.annotate`,
:mod:`critiq.label`): :mod:`~critiq.judge.worker` asks a model, :mod:`~critiq.judge.answers` holds the reply schemas,
:mod:`~critiq.judge.keys` the identities of criteria, :mod:`~critiq.judge.modes` the judging modes,
:mod:`~critiq.judge.vote` the vote across criteria and :mod:`~critiq.judge.metrics` the agreement with human labels.

This package imports nothing on its own: import from its modules.
"""
