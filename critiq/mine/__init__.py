"""Step 1 of the pipeline: mine quality criteria from human preferences (CritiQ Flow)."""

from critiq.mine.flow import CritiQFlow, FlowConfig
from critiq.mine.judge import Worker
from critiq.mine.manager import Manager
from critiq.mine.result import FlowResult
from critiq.mine.vote import majority

__all__ = ["CritiQFlow", "FlowConfig", "FlowResult", "Manager", "Worker", "majority"]
