"""Saving and loading trained weights: a small, self-describing file per model."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .models import build_model

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class WeightsError(RuntimeError):
    """Weights are missing, unreadable, or for another model."""


def save_weights(path: str | os.PathLike, model: nn.Module, model_name: str, **info) -> None:
    """Write ``{"model": name, "state_dict": fp32 weights, **info}`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model_name, "state_dict": state, **info}, tmp)
    os.replace(tmp, path)


def load_weights(path: str | os.PathLike,
                 expected_model: str | tuple[str, ...] | None = None) -> tuple[nn.Module, dict]:
    """(model in eval mode, info dict) from a weights file written by :func:`save_weights`
    or a training checkpoint; ``expected_model``: the preset name, or a tuple of accepted ones."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"no weights at {path}; train them with `python -m stss_runtime train stss` "
                           f"(see docs/training/README.md)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt file
        raise WeightsError(f"cannot read weights {path}: {e}") from None
    name = blob.get("model")
    accepted = (expected_model,) if isinstance(expected_model, str) else expected_model
    if accepted is not None and name not in accepted:
        want = repr(accepted[0]) if len(accepted) == 1 else "one of " + ", ".join(map(repr, accepted))
        raise WeightsError(f"{path} holds weights for model {name!r}, expected {want}")
    model = build_model(name)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, {k: v for k, v in blob.items() if k != "state_dict"}


def default_weights(model_name: str) -> Path:
    """Where the project's shipped weights for ``model_name`` live."""
    return WEIGHTS_DIR / f"{model_name}_2x.pt"
