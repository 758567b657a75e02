"""What a run tells the world: headline rows, a regression note in Markdown, a webhook.

Plain functions (no Prefect; ``flows.artifacts`` publishes them). The webhook's URL is read
from the environment variable the spec names (``regression.webhook_env``) at the moment of
the call and goes nowhere else: not into the run directory, the index, the flow's
parameters or the logs (errors are logged by kind and status only, since an HTTP library's
message quotes the URL). Delivery is a JSON POST with a bounded number of attempts and
exponential backoff; a webhook that keeps failing is logged and never fails the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.regression import RegressionReport, pooled_values
from t2iaudit.flow_options import RegressionOptions

RETRY_HTTP = {408, 425, 429, 500, 502, 503, 504}


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    """A p-value: three decimals, or two significant digits below 0.001."""
    if value is None:
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def headline_rows(
    run_dir: str | Path, options: RegressionOptions, report: RegressionReport | None = None
) -> list[dict[str, Any]]:
    """One row per watched metric pooled over prompts: value, interval, n; with the previous
    run's value, the change and the test when the run was compared."""
    from t2iaudit.run.store import RunStore

    names = {w.metric for w in options.watch}
    moves = {
        (m.metric, m.attribute, m.model_id, m.judge_id, m.reference or ""): m
        for m in (report.metrics if report else [])
    }
    rows = []
    for m in RunStore(run_dir).metrics():
        if m.metric not in names or set(m.scope) != {"model_id", "judge_id"}:
            continue
        reference = str(m.params.get("reference", ""))
        row: dict[str, Any] = {
            "metric": m.metric,
            "model": m.scope["model_id"],
            "attribute": m.attribute,
            "judge": m.scope["judge_id"].split("#", 1)[0],
            "reference": reference or "-",
            "value": _num(m.value),
            "95% CI": f"[{_num(m.ci_low)}, {_num(m.ci_high)}]",
            "n": m.n,
            "unknown": m.n_unknown,
        }
        move = moves.get((m.metric, m.attribute, m.scope["model_id"], m.scope["judge_id"], reference))
        if report is not None:
            row["previous"] = _num(move.before) if move else "-"
            row["p (Holm)"] = _p(move.p_holm) if move else "-"
            row["regressed"] = "yes" if move and move.regressed else "no"
        rows.append(row)
    return rows


def regression_markdown(spec_id: str, report: RegressionReport, paths: dict[str, str]) -> str:
    """The alert: which headline metrics got worse, significantly, and the prompts that moved."""
    lines = [
        f"# Regression in audit `{spec_id}`",
        "",
        f"Run `{Path(report.current).name}` against the previous finished run `{Path(report.previous).name}` "
        f"(same prompts and seeds). A metric counts when it got worse by more than its threshold and its "
        f"label distribution differs between the runs (Holm-adjusted p < {report.alpha:g}).",
        "",
        "## Metrics that moved",
        "",
        "| metric | model | attribute | judge | reference | before | after | worse by | threshold | p (Holm) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in report.moved:
        lines.append(
            f"| {m.metric} | {m.model_id} | {m.attribute} | {m.judge_id.split('#', 1)[0]} | {m.reference or '-'} "
            f"| {_num(m.before)} | {_num(m.after)} | {_num(m.worse_by)} | {m.threshold:g} | {_p(m.p_holm)} |"
        )
    lines += ["", "## Prompts that moved", ""]
    if report.prompts:
        lines += [
            "| prompt | model | attribute | label | share before | share after | p (Holm) |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in report.prompts:
            lines.append(
                f"| `{p.prompt_id}` | {p.model_id} | {p.attribute} | {p.label} | {_num(p.before)} "
                f"| {_num(p.after)} | {_p(p.p_holm)} |"
            )
    else:
        lines.append("No single prompt moved significantly after Holm's adjustment; the change is spread over prompts.")
    lines += ["", "## Files", ""] + [f"- {name}: `{path}`" for name, path in paths.items()]
    return "\n".join(lines) + "\n"


def webhook_payload(spec_id: str, report: RegressionReport, paths: dict[str, str]) -> dict[str, Any]:
    """The JSON a webhook receives: spec id, run paths, what moved with values and p-values."""
    return {
        "event": "t2iaudit.regression",
        "spec_id": spec_id,
        "run": paths,
        "previous_run": report.previous,
        "alpha": report.alpha,
        "metrics": [
            {
                k: getattr(m, k)
                for k in (
                    "metric",
                    "model_id",
                    "attribute",
                    "judge_id",
                    "reference",
                    "before",
                    "after",
                    "worse_by",
                    "threshold",
                    "p_holm",
                )
            }
            for m in report.moved
        ],
        "prompts": [p.__dict__ for p in report.prompts],
    }


def post_webhook(
    env_name: str,
    payload: dict[str, Any],
    log: Callable[[str], None],
    attempts: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 10.0,
) -> bool:
    """POST ``payload`` to the URL in ``$env_name``; True once a 2xx answer came back.

    At most ``attempts`` requests (waits ``backoff_s * 2**k`` between them), retried on
    connection errors, timeouts, 429 and 5xx; another 4xx ends it. ``log`` gets one line per
    failure naming the variable, never the URL.
    """
    import httpx

    url = os.environ.get(env_name)
    if not url:
        log(f"webhook: ${env_name} is not set; no webhook sent")
        return False
    for attempt in range(1, attempts + 1):
        try:
            response = httpx.post(url, json=payload, timeout=timeout_s)
        except httpx.HTTPError as e:
            outcome, retry = type(e).__name__, True
        else:
            if 200 <= response.status_code < 300:
                return True
            outcome, retry = f"HTTP {response.status_code}", response.status_code in RETRY_HTTP
        log(f"webhook ${env_name}: {outcome} (attempt {attempt} of {attempts})")
        if not retry:
            return False
        if attempt < attempts:
            time.sleep(backoff_s * 2 ** (attempt - 1))
    return False


def run_paths(run_dir: str | Path) -> dict[str, str]:
    """The run directory and its summary and report (those that exist)."""
    root = Path(run_dir).resolve()
    paths = {"run_dir": str(root)}
    for name, file in (("summary", "summary.md"), ("report", "report.html")):
        if (root / file).exists():
            paths[name] = str(root / file)
    return paths


def watched_values(run_dir: str | Path, options: RegressionOptions) -> int:
    """How many watched values the run has (0: nothing to compare, e.g. a metric id typo)."""
    return len(pooled_values(run_dir, options.watch))
