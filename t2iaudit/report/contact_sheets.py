"""Contact sheets: per prompt, thumbnails grouped by judged label, and where judges disagree.

A reader checks the judge by eye: are the images under "female" perceived as female, are
the "unknown" ones really unreadable? Only images whose files are in the run directory can
be shown; a run of imported labels has none, and the section says so.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.report.options import ReportOptions
from t2iaudit.report.palette import Palette
from t2iaudit.report.rundata import RunData
from t2iaudit.report.thumbnails import Thumbnails


class Thumb(BaseModel):
    """One thumbnail."""

    model_config = ConfigDict(frozen=True)

    url: str | None
    """JPEG data URL (None: the file could not be decoded)."""
    image_id: str
    caption: str
    alt: str


class SheetGroup(BaseModel):
    """The thumbnails of one judged label."""

    model_config = ConfigDict(frozen=True)

    label: str
    colour: str
    count: int
    """Images of the prompt with this label (all of them, shown or not)."""
    thumbs: list[Thumb]


class SheetPrompt(BaseModel):
    """One model's images of one prompt."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    prompt_id: str
    text: str
    groups: list[SheetGroup]
    disagree: list[Thumb] = Field(default_factory=list)
    """Images where another judge gave a different (known) label."""
    n_disagree: int = 0


class ContactSheet(BaseModel):
    """Contact sheets of one protected attribute, grouped by its primary judge's labels."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    judge_id: str
    others: list[str]
    """Other judges of the attribute (their labels appear where they disagree)."""
    prompts: list[SheetPrompt]
    hidden: int = 0
    """Prompts not shown (beyond ``ReportOptions.max_prompts``)."""


def _thumb(data: RunData, thumbs: Thumbnails, image_id: str, caption: str) -> Thumb | None:
    path = data.image_files.get(image_id)
    if path is None:
        return None
    return Thumb(url=thumbs.url(path), image_id=image_id, caption=caption, alt=f"image {image_id}: {caption}")


def contact_sheet(
    data: RunData,
    attribute: str,
    judge_id: str,
    prompt_order: dict[str, list[str]],
    thumbs: Thumbnails,
    palette: Palette,
    options: ReportOptions,
) -> ContactSheet:
    """The contact sheet of one attribute.

    Args:
        prompt_order: Model -> prompt ids in the order to show them (most skewed first).
    """
    frame = data.table.frame
    rows = frame[(frame["attribute"] == attribute) & frame["judge_id"].isin(data.judges_for(attribute))]
    rows = rows[rows["image_id"].isin(data.image_files.keys())]
    wide = rows.pivot_table(index="image_id", columns="judge_id", values="label", aggfunc="first")
    others = [j for j in wide.columns if j != judge_id]
    meta = rows.drop_duplicates("image_id").set_index("image_id")[["model_id", "prompt_id", "replicate"]]
    wide = wide.join(meta).sort_values(["model_id", "prompt_id", "replicate"])
    labels = [*data.labels(judge_id, attribute), "unknown"]
    k = options.thumbnails_per_label
    prompts: list[SheetPrompt] = []
    hidden = 0
    by_cell = {key: block for key, block in wide.groupby(["model_id", "prompt_id"], sort=False)}
    for model in data.models:
        order = prompt_order.get(model) or list(data.prompts)
        shown = [p for p in order if (model, p) in by_cell]
        hidden += max(0, len(shown) - options.max_prompts)
        for pid in shown[: options.max_prompts]:
            block = by_cell[(model, pid)]
            mine = block[judge_id] if judge_id in block else None
            if mine is None:
                continue
            groups = []
            for label in labels:
                ids = [str(i) for i in block.index[mine == label]]
                if not ids:
                    continue
                made = [_thumb(data, thumbs, i, f"#{_rep(block, i)} {label}") for i in ids[:k]]
                groups.append(
                    SheetGroup(
                        label=label, colour=palette[label], count=len(ids), thumbs=[t for t in made if t is not None]
                    )
                )
            disagree_ids = []
            for image_id, row in block.iterrows():
                mine_label = row.get(judge_id)
                theirs = {j: row.get(j) for j in others if isinstance(row.get(j), str)}
                if mine_label != "unknown" and any(v not in ("unknown", mine_label) for v in theirs.values()):
                    caption = f"#{_rep(block, str(image_id))} " + ", ".join(
                        f"{data.judge_name(j)}: {row.get(j)}" for j in [judge_id, *theirs]
                    )
                    disagree_ids.append((str(image_id), caption))
            disagree = [_thumb(data, thumbs, i, c) for i, c in disagree_ids[:k]]
            prompts.append(
                SheetPrompt(
                    model_id=model,
                    prompt_id=pid,
                    text=data.prompt_text(pid),
                    groups=groups,
                    disagree=[t for t in disagree if t is not None],
                    n_disagree=len(disagree_ids),
                )
            )
    return ContactSheet(attribute=attribute, judge_id=judge_id, others=others, prompts=prompts, hidden=hidden)


def _rep(block: object, image_id: str) -> str:
    try:
        return str(int(block.loc[image_id, "replicate"]))  # type: ignore[attr-defined]
    except (KeyError, ValueError, TypeError):
        return "?"
