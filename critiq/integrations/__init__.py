"""Bridges to data pipelines: DataTrove (``critiq.integrations.datatrove``) and a Ray connection
(``critiq.integrations.ray``; scoring on Ray Data is :mod:`critiq.score.ray`).

Each module imports its framework when it is imported (Ray: when first used); this package imports nothing.
"""
