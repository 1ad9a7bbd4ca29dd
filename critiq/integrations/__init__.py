"""Bridges to data pipelines: Ray Data (``critiq.integrations.ray``) and DataTrove (``critiq.integrations.datatrove``).

Each module imports its framework when it is imported; this package imports nothing.
"""
