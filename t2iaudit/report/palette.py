"""One colour per label across every figure of a report (colour-blind-safe, grey for unknown)."""

from __future__ import annotations

from collections.abc import Iterable

UNKNOWN_COLOUR = "#9e9e9e"
COLOURS = (
    "#0072B2",  # Okabe & Ito (2008), "Color Universal Design": distinguishable with colour-vision deficiency
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#4E79A7",  # then Tableau 10 tones, for label sets larger than eight
    "#F28E2B",
    "#76B7B2",
    "#59A14F",
    "#EDC948",
    "#B07AA1",
    "#FF9DA7",
    "#9C755F",
)


class Palette:
    """Label -> colour, assigned in the order labels are first seen, the same in every figure."""

    def __init__(self, labels: Iterable[str] = ()) -> None:
        self._colours: dict[str, str] = {"unknown": UNKNOWN_COLOUR}
        self.extend(labels)

    def extend(self, labels: Iterable[str]) -> None:
        for label in labels:
            if label not in self._colours:
                used = len(self._colours) - 1
                self._colours[label] = COLOURS[used % len(COLOURS)]

    def __getitem__(self, label: str) -> str:
        self.extend([label])
        return self._colours[label]

    def items(self) -> list[tuple[str, str]]:
        return list(self._colours.items())


def text_colour(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (``#rrggbb``)."""
    r, g, b = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"
