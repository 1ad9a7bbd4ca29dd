"""Step 0 of the pipeline: a person labels pairs drawn from a corpus on a local page (``critiq label``)."""

from critiq.label.agreement import Agreement, agreement
from critiq.label.candidates import Candidate, CandidatePool, Text, draw_candidates, read_corpus
from critiq.label.selection import CriteriaRanker, Ranked, Ranker, ScorerRanker, Selector, knowledge_criteria
from critiq.label.session import Issue, LabelSession, Refused
from critiq.label.storage import LabelStore, skipped_path
from critiq.label.web import make_app, serve

__all__ = [
    "Agreement",
    "Candidate",
    "CandidatePool",
    "CriteriaRanker",
    "Issue",
    "LabelSession",
    "LabelStore",
    "Ranked",
    "Ranker",
    "Refused",
    "ScorerRanker",
    "Selector",
    "Text",
    "agreement",
    "draw_candidates",
    "knowledge_criteria",
    "make_app",
    "read_corpus",
    "serve",
    "skipped_path",
]
