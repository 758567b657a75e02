"""Jinja2 rendering of the report pages: autoescaped, self-contained, no script, a strict CSP."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from t2iaudit.report import fmt

if TYPE_CHECKING:
    import jinja2

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; form-action 'none'"
)
"""Content security policy of every page: images only from ``data:`` URLs, inline styles,
nothing else (no scripts, no network, no frames)."""


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment (templates ship as package data under ``report/templates``)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("t2iaudit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt.num,
        pct=fmt.pct,
        interval=fmt.interval,
        pvalue=fmt.pvalue,
        value_ci=fmt.value_ci,
        perceived=fmt.perceived,
        short=fmt.short_judge,
    )
    env.globals["csp"] = CSP
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return environment().get_template(template).render(**context)
