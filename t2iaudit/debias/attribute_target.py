"""The wanted distribution of one attribute, shared by plan requests and the spec's ``debias:`` section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_N = 1000
"""Most items one plan may ask for."""
MAX_CLASSES = 32
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"

Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
ClassName = Annotated[str, Field(min_length=1, max_length=64)]


class AttributeTarget(BaseModel):
    """The wanted distribution of one attribute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    classes: list[ClassName] | None = Field(default=None, min_length=1, max_length=MAX_CLASSES)
    """Classes to plan (default: every class of the vocabulary); ``unspecified`` leaves the attribute out."""
    target: Literal["uniform"] | list[Share] = "uniform"
    """Shares aligned with ``classes`` (summing to 1), or ``uniform``."""
