"""``critiq.ablate``: the flow, its ablations and two baselines on one train/test split, as the paper's table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from critiq.api.inputs import Data, Model, as_criteria, as_settings, load
from critiq.api.session import Session, clients_for
from critiq.llm.sync import run_sync

if TYPE_CHECKING:
    from critiq.data.models import Criterion
    from critiq.mine.config import FlowConfig
    from critiq.rundir.ablation import AblationRow

Progress = Callable[[str, int, int], None]


async def aablate(
    train: Data,
    test: Data,
    out: str | Path,
    *,
    methods: Sequence[str] | None = None,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    init_criteria: Sequence[Criterion] | str | Path = (),
    max_chars: int | None = None,
    config: FlowConfig | None = None,
    progress: Progress | None = None,
    **flow_options: Any,
) -> list[AblationRow]:
    """The async form of :func:`ablate` (the same arguments).

    Example::

        rows = await critiq.aablate(train_df, test_df, "runs/ablation", model="gpt-4o", iterations=2)
    """
    from critiq.mine.ablation import METHODS, Ablation
    from critiq.mine.config import FlowConfig

    train_examples = load(train, max_chars=max_chars, require_labels=True)
    test_examples = load(test, max_chars=max_chars, require_labels=True)
    initial = as_criteria(init_criteria) if init_criteria else []
    if config is None or flow_options:
        config = FlowConfig(**{**(config.model_dump() if config else {}), **flow_options})
    if session is None:
        settings = as_settings(model, api_base)
        if settings.cache_dir is None:  # no cache asked for: the methods still share their answers, in ``out``
            model, api_base = settings.model_copy(update={"cache_dir": Path(out) / "cache"}), None
    with clients_for(model, api_base, session) as clients:
        ablation = Ablation(
            config, manager=clients.manager, worker=clients.worker, init_criteria=initial, progress=progress
        )
        return await ablation.run(train_examples, test_examples, out, methods=methods or METHODS)


def ablate(
    train: Data,
    test: Data,
    out: str | Path,
    *,
    methods: Sequence[str] | None = None,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    init_criteria: Sequence[Criterion] | str | Path = (),
    max_chars: int | None = None,
    config: FlowConfig | None = None,
    progress: Progress | None = None,
    **flow_options: Any,
) -> list[AblationRow]:
    """Run the flow, each ablation (no reflection, no knowledge base, neither) and the baselines (all criteria in one
    prompt, one overall judgment, the best knowledge-base criterion) on the same split, scored on ``test``.

    ``train``/``test``: labelled pairs or points, as for :func:`mine`. ``out`` gets ``ablation.json``,
    ``ablation.md``, ``test_judgments.jsonl`` and one run directory per flow method. ``methods``: a subset of
    ``flow, no-reflection, no-kb, no-reflection-no-kb, all-in-one, all-in-one-mined, overall, best-kb-criterion``
    (default all). All methods share one request cache (the model's ``cache_dir``, else ``out/cache``): a cell two
    methods judge is asked once. ``flow_options`` are :class:`FlowConfig` fields, or pass ``config=``.

    Example::

        rows = critiq.ablate("train.jsonl", "test.jsonl", "runs/ablation", iterations=1)
        print(rows[0].method, rows[0].accuracy)
    """
    return run_sync(
        aablate(
            train,
            test,
            out,
            methods=methods,
            model=model,
            api_base=api_base,
            session=session,
            init_criteria=init_criteria,
            max_chars=max_chars,
            config=config,
            progress=progress,
            **flow_options,
        )
    )
