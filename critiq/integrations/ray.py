"""Ray: connect to a cluster or start a local Ray (the Ray engines: :mod:`critiq.score.ray`,
:mod:`critiq.annotate.ray_job`)."""

from __future__ import annotations

import os

from critiq.errors import CritiqError


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a local Ray (no dashboard) unless one is already running."""
    try:
        import ray
    except ImportError as error:
        raise CritiqError("the ray engine needs Ray Data: pip install 'critiq[ray]'") from error
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
