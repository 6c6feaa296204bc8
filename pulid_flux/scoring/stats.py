"""Summary statistics of one image set's similarities, defined so they recompute from the CSV rows.

* ``count``, ``mean``, ``median``, ``std``, ``min``, ``max``: over the images where a face was
  found (similarity not ``None``). ``std`` is the POPULATION standard deviation (ddof=0), so a set
  with a single face has std 0 rather than undefined. With no face at all they are ``None``.
* ``no_face_rate``: images without a face / all images.
* ``pass_rate``: images whose similarity is AT OR ABOVE ``threshold`` / ALL images; an image with
  no face counts as a fail.

The per-image similarities are rounded (``SIMILARITY_DECIMALS``) before they are written and before
these statistics are taken, so reading the CSV back gives the very numbers the summary was made of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

SIMILARITY_DECIMALS = 6
SUMMARY_KEYS = ("count", "mean", "median", "std", "min", "max", "no_face_rate", "pass_rate", "threshold")


def round_similarity(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"similarity is {value}; the embeddings must be finite")
    return round(value, SIMILARITY_DECIMALS)


def passes(similarity: float | None, threshold: float) -> bool:
    """The pass rule: a face was found and its similarity is at or above ``threshold``."""
    return similarity is not None and similarity >= threshold


def summarize(similarities: Sequence[float | None], threshold: float) -> dict:
    """Summary of one set (``None`` = no face in that image); keys are :data:`SUMMARY_KEYS`."""
    n_images = len(similarities)
    if n_images == 0:
        raise ValueError("cannot summarise an empty image set")
    found = np.array([s for s in similarities if s is not None], dtype=np.float64)
    stats = {"count": int(found.size), "mean": None, "median": None, "std": None, "min": None, "max": None}
    if found.size:
        stats.update(mean=float(np.mean(found)), median=float(np.median(found)), std=float(np.std(found, ddof=0)),
                     min=float(np.min(found)), max=float(np.max(found)))
    stats["no_face_rate"] = (n_images - int(found.size)) / n_images
    stats["pass_rate"] = sum(passes(s, threshold) for s in similarities) / n_images
    stats["threshold"] = float(threshold)
    return stats
