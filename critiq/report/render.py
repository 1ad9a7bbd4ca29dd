"""The report's Jinja2 environment: the templates shipped beside this module, autoescaped, and its number filters."""

from __future__ import annotations

from functools import cache

import jinja2

from critiq.stats import NO_VALUE, interval_text, pct


def number(value: float | None) -> str:
    """``1,234`` for a count, ``0.1235`` (four significant digits) for a measure, a dash for no value."""
    if value is None or isinstance(value, bool):
        return NO_VALUE
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def four_digits(value: float) -> str:
    return f"{value:.4g}"


@cache
def environment() -> jinja2.Environment:
    """Every ``{{ value }}`` is HTML-escaped (texts in a run are untrusted); an unknown name is an error."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("critiq.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=pct, interval=interval_text, number=number, g4=four_digits)
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
