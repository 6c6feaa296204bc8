"""Which checkpoint to use: the recommendation rule over each checkpoint's mean scores.

Identity rises while the LoRA trains and then saturates; later checkpoints start copying the
dataset and lose prompt adherence. The rule looks for the knee (defaults δ = 0.02, ε = 0.01;
``--delta`` / ``--epsilon`` change them):

1. The earliest checkpoint whose mean identity is within δ of the best checkpoint's mean identity
   AND whose mean CLIP score is within ε of the best mean CLIP score.
2. If none qualifies, the checkpoint with the best mean identity.
3. Ties go to the earlier checkpoint ("within" is inclusive).
4. When no image of any checkpoint holds a face (e.g. ``--tiny``), identity cannot be measured: the
   earliest checkpoint whose mean CLIP score is within ε of the best (rule 1 without identity), and
   the reason says so.

Mean identity is over the images where a face was found; a checkpoint none of whose images holds
a face has no identity and never qualifies under rules 1-2 (its no-face rate is reported instead).

Style stacking (``--style-lora``) uses :func:`recommend_style`: among the strengths whose mean
identity stays within δ of the weakest strength's (normally 0, no style), the one with the best
style CLIP score (ties: the weaker); without faces, the best style CLIP score alone.

Pure Python: the rows come in the caller's order (step order; strength order for styles).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_DELTA = 0.02
DEFAULT_EPSILON = 0.01
# Means are rounded to 6 decimals in the CSV; comparisons allow for the float error of that.
_TOLERANCE = 1e-9

IDENTITY_AND_CLIP = "identity+clip"
BEST_IDENTITY = "best-identity"
CLIP_ONLY = "clip-only"


@dataclass(frozen=True)
class StepScores:
    """One checkpoint's (or style strength's) means over its images."""

    name: str                       # the checkpoint file (or "strength 0.5")
    label: str                      # the step as shown ("250", "final")
    identity: float | None          # mean identity over images with a face; None without any face
    clip: float | None              # mean CLIP score (image vs. its prompt)
    style_clip: float | None = None  # mean CLIP score against the style prompt (style sweeps)


@dataclass(frozen=True)
class Recommendation:
    name: str
    label: str
    mode: str                       # IDENTITY_AND_CLIP, BEST_IDENTITY or CLIP_ONLY
    reason: str
    delta: float
    epsilon: float
    qualifying: tuple[str, ...] = field(default=())


def _check_tolerance(value: float, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a non-negative number, got {value!r}")
    return float(value)


def _scored_rows(rows: Sequence[StepScores], attribute: str, what: str) -> list[StepScores]:
    """``rows`` as a list; ValueError when there is none or none has ``attribute``."""
    rows = list(rows)
    if not rows:
        raise ValueError(f"no {what} to recommend: the sweep scored no image")
    if all(getattr(r, attribute) is None for r in rows):
        raise ValueError(f"no {what} has a {attribute.replace('_', ' ')} score; the sweep's images were not scored")
    return rows


def _within(value: float | None, best: float, tolerance: float) -> bool:
    return value is not None and value >= best - tolerance - _TOLERANCE


def _first_best(rows: Sequence[StepScores], attribute: str) -> StepScores:
    """The row with the highest value of ``attribute`` (the earliest on ties)."""
    present = [r for r in rows if getattr(r, attribute) is not None]
    best = max(getattr(r, attribute) for r in present)
    return next(r for r in present if getattr(r, attribute) >= best - _TOLERANCE)


def _where(row: StepScores) -> str:
    return f"step {row.label} ({row.name})"


def recommend(rows: Sequence[StepScores], *, delta: float = DEFAULT_DELTA,
              epsilon: float = DEFAULT_EPSILON) -> Recommendation:
    """Apply the rule of the module docstring to ``rows`` (in step order)."""
    delta = _check_tolerance(delta, "delta (--delta)")
    epsilon = _check_tolerance(epsilon, "epsilon (--epsilon)")
    rows = _scored_rows(rows, "clip", "checkpoint")
    best_clip = _first_best(rows, "clip")
    if all(r.identity is None for r in rows):
        qualifying = [r for r in rows if _within(r.clip, best_clip.clip, epsilon)]
        chosen = qualifying[0]
        reason = (f"No image of any checkpoint holds a face, so identity could not be measured and the "
                  f"recommendation uses the CLIP score alone: {_where(chosen)} is the earliest checkpoint whose "
                  f"mean CLIP score ({chosen.clip:.4f}) is within ε = {epsilon:g} of the best "
                  f"({best_clip.clip:.4f}, {_where(best_clip)}).")
        return Recommendation(chosen.name, chosen.label, CLIP_ONLY, reason, delta, epsilon,
                              tuple(r.name for r in qualifying))
    best_id = _first_best(rows, "identity")
    qualifying = [r for r in rows if _within(r.identity, best_id.identity, delta)
                  and _within(r.clip, best_clip.clip, epsilon)]
    if qualifying:
        chosen = qualifying[0]
        reason = (f"{_where(chosen)} is the earliest checkpoint whose mean identity ({chosen.identity:.4f}) is "
                  f"within δ = {delta:g} of the best ({best_id.identity:.4f}, {_where(best_id)}) and whose mean "
                  f"CLIP score ({chosen.clip:.4f}) is within ε = {epsilon:g} of the best ({best_clip.clip:.4f}, "
                  f"{_where(best_clip)}).")
        if len(qualifying) > 1:
            reason += " Later checkpoints that also qualify: " + ", ".join(r.label for r in qualifying[1:]) + "."
        return Recommendation(chosen.name, chosen.label, IDENTITY_AND_CLIP, reason, delta, epsilon,
                              tuple(r.name for r in qualifying))
    reason = (f"No checkpoint is both within δ = {delta:g} of the best mean identity ({best_id.identity:.4f}) and "
              f"within ε = {epsilon:g} of the best mean CLIP score ({best_clip.clip:.4f}, {_where(best_clip)}), so "
              f"the checkpoint with the best mean identity is recommended: {_where(best_id)}.")
    return Recommendation(best_id.name, best_id.label, BEST_IDENTITY, reason, delta, epsilon)


def recommend_style(rows: Sequence[StepScores], *, delta: float = DEFAULT_DELTA) -> Recommendation:
    """The style strength to use (rows in increasing strength; see the module docstring)."""
    delta = _check_tolerance(delta, "delta (--delta)")
    rows = _scored_rows(rows, "style_clip", "style strength")
    faces = [r for r in rows if r.identity is not None]
    if not faces:
        chosen = _first_best(rows, "style_clip")
        reason = (f"No image holds a face, so identity retention could not be measured and the recommendation "
                  f"uses the style CLIP score alone: strength {chosen.label} has the best mean style CLIP score "
                  f"({chosen.style_clip:.4f}).")
        return Recommendation(chosen.name, chosen.label, CLIP_ONLY, reason, delta, 0.0)
    baseline = faces[0]
    keeping = [r for r in rows if _within(r.identity, baseline.identity, delta) and r.style_clip is not None]
    if not keeping:  # only when the baseline itself has no style score
        keeping = [r for r in rows if r.style_clip is not None]
    chosen = _first_best(keeping, "style_clip")
    reason = (f"Strength {chosen.label} has the best mean style CLIP score ({chosen.style_clip:.4f}) among the "
              f"strengths whose mean identity stays within δ = {delta:g} of strength {baseline.label}'s "
              f"({baseline.identity:.4f}): {', '.join(r.label for r in keeping)}.")
    return Recommendation(chosen.name, chosen.label, IDENTITY_AND_CLIP, reason, delta, 0.0,
                          tuple(r.name for r in keeping))
