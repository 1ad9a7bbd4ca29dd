"""``critiq.mine``: CritiQ Flow on human-labelled pairs, from data in memory or any source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from critiq.api.inputs import Data, Model, as_criteria, load
from critiq.api.session import Session, clients_for
from critiq.llm.sync import run_sync

if TYPE_CHECKING:
    from critiq.data.models import Criterion
    from critiq.mine.config import FlowConfig
    from critiq.mine.result import FlowResult

Progress = Callable[[str, int, int], None]


async def amine(
    pairs: Data,
    *,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    run_dir: str | Path | None = None,
    valid: Data | None = None,
    init_criteria: Sequence[Criterion] | str | Path = (),
    max_chars: int | None = None,
    resume: bool = False,
    config: FlowConfig | None = None,
    progress: Progress | None = None,
    **flow_options: Any,
) -> FlowResult:
    """The async form of :func:`mine` (the same arguments).

    Example::

        result = await critiq.amine(pairs_df, model="gpt-4o", n_criteria=5)
    """
    from critiq.mine.config import FlowConfig
    from critiq.mine.flow import CritiQFlow

    train = load(pairs, max_chars=max_chars, require_labels=True)
    held_out = load(valid, max_chars=max_chars, require_labels=True) if valid is not None else None
    initial = as_criteria(init_criteria) if init_criteria else []
    if config is None or flow_options:
        config = FlowConfig(**{**(config.model_dump() if config else {}), **flow_options})
    with clients_for(model, api_base, session) as clients:
        flow = CritiQFlow(
            config, manager=clients.manager, worker=clients.worker, init_criteria=initial, progress=progress
        )
        return await flow.afit(train, held_out, run_dir=run_dir, resume=resume)


def mine(
    pairs: Data,
    *,
    model: Model = None,
    api_base: str | None = None,
    session: Session | None = None,
    run_dir: str | Path | None = None,
    valid: Data | None = None,
    init_criteria: Sequence[Criterion] | str | Path = (),
    max_chars: int | None = None,
    resume: bool = False,
    config: FlowConfig | None = None,
    progress: Progress | None = None,
    **flow_options: Any,
) -> FlowResult:
    """Mine quality criteria from human-labelled pairs with CritiQ Flow.

    ``pairs``: labelled pairs or points (a list of :class:`Pair` or dicts, a DataFrame, a ``datasets.Dataset``, a
    file or ``hf://`` name). ``model``: a litellm model string or :class:`ModelSettings` (default: the embedded
    model); ``session``: reuse a :class:`Session`'s clients instead. ``run_dir`` gets ``criteria.json``,
    ``state.json``, ``usage.json`` and ``report.md`` (``resume=True`` continues a run there). ``valid``: held-out
    pairs the criteria are also scored on. ``flow_options`` are :class:`FlowConfig` fields (``n_criteria=3``,
    ``iterations=2``...), or pass ``config=``.

    Example::

        result = critiq.mine("pairs.jsonl", n_criteria=3, run_dir="run/mine")
        print(result.report())
    """
    return run_sync(
        amine(
            pairs,
            model=model,
            api_base=api_base,
            session=session,
            run_dir=run_dir,
            valid=valid,
            init_criteria=init_criteria,
            max_chars=max_chars,
            resume=resume,
            config=config,
            progress=progress,
            **flow_options,
        )
    )
