"""Loss plots shared by the trainers (``train stss``, ``flow``, ``policy``, ``vfi``): the CSV
log read back, curves drawn, the PNG replaced atomically (a plot is redrawn while training)."""

from __future__ import annotations

import csv
import os
from pathlib import Path


def pyplot():
    """matplotlib's pyplot on the Agg back-end (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_log(csv_path: Path) -> tuple[list[int], list[dict]]:
    """(steps, rows) of a trainer's ``loss.csv``."""
    rows = list(csv.DictReader(Path(csv_path).open()))
    return [int(r["step"]) for r in rows], rows


def save_figure(fig, png_path: Path) -> None:
    """Write ``fig`` to ``png_path`` through a temporary file, then close it."""
    png_path = Path(png_path)
    tmp = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(tmp)
    pyplot().close(fig)
    os.replace(tmp, png_path)


def plot_curves(csv_path: Path, png_path: Path, keys, ylabel: str, title: str) -> None:
    """One log-scale panel with the columns ``keys`` of the log against the step."""
    steps, rows = read_log(csv_path)
    if not rows:
        return
    fig, ax = pyplot().subplots(figsize=(7, 4), dpi=100)
    for key in keys:
        ax.plot(steps, [float(r[key]) for r in rows], label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, png_path)
