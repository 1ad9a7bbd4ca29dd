"""How a worker judges: the order the texts are shown in, and what one request asks."""

from __future__ import annotations

from typing import Literal

SwapMode = Literal["random", "both", "none"]
WorkerMode = Literal["per-criterion", "all-in-one", "overall", "combined"]
