"""The run directory: every file critiq's commands leave in it, as one typed model each, and their readers.

A pipeline run directory (each part optional; docs/run_directory.md)::

    RUN_DIR/pairs.jsonl, pairs.skipped.jsonl      critiq label --out RUN_DIR/pairs.jsonl      (labels.py)
    RUN_DIR/mine/                                 critiq mine --out RUN_DIR/mine               (flow.py, flow_dir.py)
        state.json criteria.json usage.json judgments.jsonl iterations/ report.md accuracy.png
    RUN_DIR/labeled.jsonl, annotate.json          critiq annotate --out RUN_DIR/labeled.jsonl  (annotation.py)
    RUN_DIR/scorer/scorer.json                    critiq train-scorer --out RUN_DIR/scorer     (scorer.py)
    RUN_DIR/scored.parquet                        critiq score --out RUN_DIR/scored.parquet
    RUN_DIR/selected.jsonl, selection.json        critiq select --out RUN_DIR/selected.jsonl   (selection.py)
    RUN_DIR/ablation.json (or ablation/)          critiq ablate --out RUN_DIR                  (ablation.py)
    RUN_DIR/run.json                              free-form notes of a pipeline script         (notes.py)

or a bare flow run directory (``criteria.json`` at the top). The flow's resume reads ``state.json`` through
:class:`RunDir`, ``kb add --from-run`` reads ``criteria.json`` through :func:`read_criteria`, and the report reads
everything through :class:`RunFiles`.
"""

from critiq.rundir.ablation import AblationRow, AblationTable
from critiq.rundir.annotation import Annotation, AnnotationSummary
from critiq.rundir.flow import EvidenceFit, FlowCriteria, HistoryRow, PositionBias, Retrieval, RunState
from critiq.rundir.flow_dir import RunDir
from critiq.rundir.labels import LabelSummary
from critiq.rundir.notes import RunNotes
from critiq.rundir.reader import RunFiles, read_criteria
from critiq.rundir.scorer import FitReport, ScorerManifest
from critiq.rundir.selection import Selection

__all__ = [
    "AblationRow",
    "AblationTable",
    "Annotation",
    "AnnotationSummary",
    "EvidenceFit",
    "FitReport",
    "FlowCriteria",
    "HistoryRow",
    "LabelSummary",
    "PositionBias",
    "Retrieval",
    "RunDir",
    "RunFiles",
    "RunNotes",
    "RunState",
    "ScorerManifest",
    "Selection",
    "read_criteria",
]
