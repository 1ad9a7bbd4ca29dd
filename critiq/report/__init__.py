"""Reports on a pipeline run: ``render_html(run_dir)`` writes one self-contained ``report.html``."""

from critiq.report.html import render_html

__all__ = ["render_html"]
