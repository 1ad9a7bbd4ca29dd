"""Packaging: the repository's data folders are mapped into the package at build time (their one source stays at
the top level): ``knowledge_base/`` → ``critiq.knowledge_base``, ``examples/data/`` → ``critiq.example_data``.
Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

DATA_PACKAGES = {"critiq.knowledge_base": "knowledge_base", "critiq.example_data": "examples/data"}

PACKAGES = find_namespace_packages(include=["critiq", "critiq.*"], exclude=["*.__pycache__"])

setup(packages=[*PACKAGES, *DATA_PACKAGES], package_dir=DATA_PACKAGES)
