"""Step 1 of the pipeline: mine quality criteria from human preferences (CritiQ Flow)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from critiq.mine.flow import CritiQFlow, FlowConfig
    from critiq.mine.manager import Manager
    from critiq.mine.result import FlowResult

_EXPORTS = {
    "CritiQFlow": "critiq.mine.flow",
    "FlowConfig": "critiq.mine.flow",
    "Manager": "critiq.mine.manager",
    "FlowResult": "critiq.mine.result",
}
__all__ = ["CritiQFlow", "FlowConfig", "FlowResult", "Manager"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:  # imported on first use: the CLI's start-up does not pay for what it does not run
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
