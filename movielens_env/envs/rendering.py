"""Pictures of an episode for ``render_mode="rgb_array"`` (and so ``RecordVideo``).

One frame: the user and the history by title, the last slate with its ratings, the rating of
every step so far, and the user's state where the user model has one (satiation per genre,
the patience left). Drawn with matplotlib's Agg canvas into an RGB array, without pyplot (no
window, no global figure state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WIDTH, HEIGHT, DPI = 800, 500, 100
_TITLE_CHARS = 42  # longer titles are cut, so the text column never runs into the charts


@dataclass(frozen=True)
class Frame:
    """What one frame shows (titles and numbers, already looked up)."""

    heading: str
    history: list[str]
    slate: list[tuple[str, float]]  # title and rating (NaN: unrated)
    step_ratings: list[float]  # the mean rating of each step's slate so far
    scale: tuple[float, float]  # the dataset's rating scale
    satiation: dict[str, float] | None = None  # per genre, under "boredom"
    patience: tuple[float, float] | None = None  # left and budget, under "patience"


def _cut(title: str) -> str:
    return title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1] + "…"


def draw(frame: Frame) -> np.ndarray:
    """The frame as a ``(HEIGHT, WIDTH, 3)`` uint8 RGB image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 2, width_ratios=(1.1, 1), hspace=0.45, wspace=0.25)
    figure.suptitle(frame.heading, fontsize=11)

    text = figure.add_subplot(grid[:, 0])
    text.axis("off")
    lines = ["History (oldest first):", *(f"  {_cut(t)}" for t in frame.history)]
    if frame.slate:
        lines += ["", "Recommended:"]
        lines += [
            f"  {_cut(t)}  " + ("unrated" if math.isnan(r) else f"{r:.2f}") for t, r in frame.slate
        ]
    text.text(0, 1, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=7)

    ratings = figure.add_subplot(grid[0, 1])
    low, high = frame.scale
    steps = np.arange(1, len(frame.step_ratings) + 1)
    values = np.nan_to_num(np.asarray(frame.step_ratings, dtype=float), nan=low)
    colours = ["tab:green" if v >= 4 else "tab:gray" for v in values]
    ratings.bar(steps, values - low, bottom=low, color=colours)
    ratings.set_ylim(low, high)
    ratings.set_xlim(0.4, max(10, len(steps)) + 0.6)
    ratings.set_title("rating per step (green: a hit)", fontsize=9)
    ratings.tick_params(labelsize=7)

    state = figure.add_subplot(grid[1, 1])
    state.tick_params(labelsize=7)
    if frame.satiation is not None:
        top = sorted(frame.satiation.items(), key=lambda kv: -kv[1])[:8]
        state.barh([g for g, _ in top][::-1], [s for _, s in top][::-1], color="tab:orange")
        state.set_title("satiation (most bored genres)", fontsize=9)
    elif frame.patience is not None:
        left, budget = frame.patience
        state.barh(["patience"], [max(left, 0.0)], color="tab:blue")
        state.set_xlim(0, budget)
        state.set_title("patience left", fontsize=9)
    else:
        state.axis("off")
        state.text(0.5, 0.5, "static user: no state", ha="center", va="center", fontsize=9)

    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
