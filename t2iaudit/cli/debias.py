"""``t2iaudit debias``, ``serve``, ``debias-profile`` and ``debias-audit``: thin shells over t2iaudit.debias
and the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from t2iaudit.cli.app import QUIET, handles_input_errors, progress_bar


def parse_target(text: str) -> tuple[str, dict[str, Any]]:
    """``gender=female:0.5,male:0.5`` | ``gender=uniform`` | ``age=young,older`` -> (attribute, target dict)."""
    from t2iaudit.errors import InputError

    attr, sep, rest = text.partition("=")
    if not sep or not attr.strip():
        raise InputError(f"expected ATTRIBUTE=CLASS:SHARE,... or ATTRIBUTE=uniform, got {text!r}", field="--target")
    rest = rest.strip()
    if rest in ("", "uniform"):
        return attr.strip(), {}
    classes, shares = [], []
    for part in rest.split(","):
        name, colon, share = part.partition(":")
        classes.append(name.strip())
        if colon:
            try:
                shares.append(float(share))
            except ValueError:
                raise InputError(f"share {share!r} of {name.strip()!r} is not a number", field="--target") from None
    if shares and len(shares) != len(classes):
        raise InputError("give a share for every class or for none", field="--target")
    return attr.strip(), {"classes": classes, **({"target": shares} if shares else {})}


def build_request(prompt: str, n: int, seed: int, targets: list[str], **extra: Any) -> Any:
    """A validated PlanRequest; pydantic errors become InputErrors naming the option."""
    from pydantic import ValidationError

    from t2iaudit.debias.schema import PlanRequest
    from t2iaudit.errors import InputError, pydantic_field_path

    attributes = dict(parse_target(t) for t in targets) if targets else {"gender": {}}
    try:
        return PlanRequest(prompt=prompt, n=n, seed=seed, attributes=attributes, **extra)
    except ValidationError as e:
        err = e.errors()[0]
        raise InputError(err["msg"], field=pydantic_field_path(err["loc"])) from None


def register(app: typer.Typer) -> None:
    """Add ``debias``, ``serve``, ``debias-profile`` and ``debias-audit`` to ``app``."""

    @app.command("debias")
    @handles_input_errors
    def debias_command(
        prompt: str = typer.Argument(..., help="The prompt to plan debiased variants of."),
        n: int = typer.Option(12, "--n", help="Number of prompts (images) to plan."),
        seed: int = typer.Option(0, "--seed", help="Seed of the plan and of the image seeds."),
        target: list[str] = typer.Option(
            [], "--target", help="ATTR=CLASS:SHARE,... or ATTR=uniform; repeatable (default gender=uniform)."
        ),
        profile: str | None = typer.Option(None, "--profile", help="Realisation profile name."),
        subjects: str = typer.Option("each", "--subjects", help="each | first: which human subjects get attributes."),
        similarity: bool = typer.Option(
            True, "--similarity/--no-similarity", help="Sentence-embedding check (loads all-MiniLM-L6-v2)."
        ),
        threshold: float = typer.Option(0.6, "--threshold", help="Minimum cosine to the original."),
        vocabulary: Path | None = typer.Option(None, "--vocabulary", help="Vocabulary YAML replacing the shipped one."),
        profiles: list[Path] = typer.Option([], "--profiles", help="Extra profile folder; repeatable."),
        indent: int | None = typer.Option(
            None, "--indent", help="Pretty-print with this indent (default: the service's bytes)."
        ),
    ) -> None:
        """Plan N debiased prompts for PROMPT and print the service's JSON response."""
        import json

        from t2iaudit.debias.engine import EngineSettings, build_engine

        request = build_request(prompt, n, seed, target, profile=profile, subjects=subjects)
        settings = EngineSettings(
            similarity_threshold=threshold,
            vocabulary=str(vocabulary) if vocabulary else None,
            profile_dirs=[str(p) for p in profiles],
        )
        engine = build_engine(settings, embedder="minilm" if similarity else "none")
        body = engine.plan(request).model_dump_json()
        typer.echo(body if indent is None else json.dumps(json.loads(body), indent=indent, ensure_ascii=False))

    @app.command("serve")
    @handles_input_errors
    def serve_command(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
        port: int = typer.Option(8000, "--port", help="Port to listen on."),
        similarity: bool = typer.Option(True, "--similarity/--no-similarity", help="Load the sentence embedder."),
    ) -> None:
        """Run the debias HTTP service (key from T2IAUDIT_API_KEY; see docs/debias.md)."""
        from t2iaudit.service import ServiceSettings, serve

        base = ServiceSettings.from_env()
        serve(host, port, base.model_copy(update={"embedder": "minilm" if similarity else "none"}))

    @app.command("debias-profile")
    @handles_input_errors
    def profile_command(
        run_dir: Path = typer.Argument(..., help="Audit run directory of one model on attribute-stated prompts."),
        name: str = typer.Option(..., "--name", help="Profile name (file NAME.json)."),
        out: Path = typer.Option(Path("profiles"), "--out", help="Folder to write the profile to."),
        model: str | None = typer.Option(None, "--model", help="Model id (default: the run's only model)."),
        judge: str | None = typer.Option(None, "--judge", help="Judge id or name (default: the only one)."),
        attribute: list[str] = typer.Option(
            [], "--attribute", help="Attribute to profile; repeatable (default: all requested)."
        ),
    ) -> None:
        """Measure a realisation profile (matrix and solved request proportions) from a run directory."""
        from t2iaudit.debias.profiles import build_profile, write_profile
        from t2iaudit.errors import InputError

        if not (run_dir / "manifest.json").is_file():
            raise InputError("not a run directory (no manifest.json)", file=run_dir)
        prof = build_profile(run_dir, name, model_id=model, judge=judge, attributes=attribute or None)
        path = write_profile(prof, out)
        for attr, ap in prof.attributes.items():
            solved = ap.solved.proportions if ap.solved else {}
            typer.echo(
                f"{attr}: rows {ap.requested}, uniform target -> request {solved} (TV {ap.solved.tv if ap.solved else 'n/a'})"
            )
        typer.echo(f"wrote {path}")

    @app.command("debias-audit")
    @handles_input_errors
    def debias_audit_command(
        spec: Path = typer.Argument(..., help="Audit spec YAML with a debias: section (targets of the loop)."),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Loop directory (default: outputs/<spec id>-debias)."
        ),
        quiet: bool = QUIET,
    ) -> None:
        """Close the loop: audit the spec's prompts, debias them towards the spec's targets, re-audit with
        the same seeds (optionally for several rounds), and write the trade-off (report.html, tradeoff.md).

        Re-running into the same directory resumes: nothing already there is made again.
        """
        from t2iaudit.debias.closed_loop import loop_options, loop_summary, run_loop
        from t2iaudit.spec import load_spec

        resolved = load_spec(spec)
        loop_options(resolved)
        root = out or Path("outputs") / f"{resolved.id}-debias"
        tradeoff = run_loop(resolved, root, spec_path=spec.resolve(), progress=progress_bar(quiet))
        for line in loop_summary(tradeoff):
            typer.echo(line)
        typer.echo(f"loop directory: {root}")
        typer.echo(f"trade-off: {root / 'tradeoff.md'}")
        if (root / "report.html").exists():
            typer.echo(f"report: {root / 'report.html'}")
