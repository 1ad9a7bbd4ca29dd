"""Knowledge base of published data-quality criteria, and the model-free parts of retrieving from it."""

from critiq.knowledge.base import KINDS, KNOWN_DOMAINS, KBEntry, KnowledgeBase, Source, append_entry, bundled_path
from critiq.knowledge.retrieval import infer_domains, prefilter, rank_by_accuracy

__all__ = [
    "KINDS",
    "KNOWN_DOMAINS",
    "KBEntry",
    "KnowledgeBase",
    "Source",
    "append_entry",
    "bundled_path",
    "infer_domains",
    "prefilter",
    "rank_by_accuracy",
]
