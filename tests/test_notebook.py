"""``examples/quickstart.ipynb`` runs top to bottom on the embedded model (executed with nbclient), with only
``critiq``'s top-level names, and its report has every section the steps record (annotation and selection included)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from critiq.llm.local import KEY_VARIABLES
from tests.paths import REPO

NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


def _text(outputs: list[dict]) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_quickstart_notebook_runs(monkeypatch: pytest.MonkeyPatch, local_server: object) -> None:
    """On the session's embedded server (its kernel inherits ``CRITIQ_LOCAL_API_BASE``)."""
    nbformat = pytest.importorskip("nbformat", reason="pip install nbformat nbclient ipykernel")
    nbclient = pytest.importorskip("nbclient", reason="pip install nbformat nbclient ipykernel")
    pytest.importorskip("ipykernel", reason="pip install ipykernel")
    for name in KEY_VARIABLES:  # the notebook must use the embedded model, whatever keys this shell holds
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    sources = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "import critiq\n" in sources
    assert not re.search(r"(from|import) critiq\.", sources), "the notebook uses top-level names only"
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=1800, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), "every code cell ran"
    errors = [o for cell in code for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = "\n".join(_text(cell.get("outputs", [])) for cell in code)
    assert "embedded model: True" in text
    assert "# CritiQ Flow report" in text
    assert "## Final criteria" in text or "## Best criteria below the threshold (not final)" in text
    assert "pairs labelled" in text
    assert "selected 10 of 120" in text
    assert "top 10 rows:" in text and "report:" in text and "report.html" in text
    page = Path(re.search(r"report: (\S+report\.html)", text).group(1))  # type: ignore[union-attr]
    html = page.read_text(encoding="utf-8")
    for section in ("criteria", "votes", "usage", "annotate", "scorer", "scores", "selection"):
        assert f'id="{section}"' in html, section
    assert "pairs labelled" in html  # annotate.json, written by critiq.annotate
    assert "method top_k (k = 10)" in html and "10 records selected" in html  # selection.json, by critiq.select
