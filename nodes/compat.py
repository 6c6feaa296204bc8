"""The one place that knows which ComfyUI features the pack may use: ComfyUI 0.8.0 (the oldest we
support) to the newest.

Every V3-schema option or core API newer than 0.8.0 that the pack uses is detected here, by feature
(an ``Input`` signature, the ``io.Schema`` dataclass fields), never by version string, and never
assumed present. Node modules ask this module instead of passing a new option straight to ComfyUI:
on 0.8.0 an unknown keyword is a ``TypeError`` that keeps every node of the pack from registering.

What is newer than 0.8.0 and used by the pack:
- ``advanced=`` on V3 inputs (the frontend folds such widgets away); ``advanced(io.Int.Input)``.
- ``io.Schema`` fields in ``NEWER_SCHEMA_FIELDS``; ``schema_options(has_intermediate_output=True)``.

Core APIs the pack calls that are the same in 0.8.0 and 0.33.0 (checked in both sources, and run
on both by the ComfyUI test tier) need nothing here: folder_paths (add_model_folder_path,
get_filename_list, get_folder_paths, get_full_path_or_raise, get_save_image_path), model_management
(get_torch_device, should_use_bf16, unet_offload_device, load_models_gpu), ModelPatcher (clone,
set_model_patch_replace, wrappers, additional models), ControlNet (copy, set_cond_hint,
set_previous_controlnet, set_extra_arg), comfy.utils.ProgressBar, ui.ImageSaveHelper / PreviewImage /
PreviewText. Flux's ``transformer_options`` keys that 0.8.0 lacks (``img_slice``,
``reference_image_num_tokens``) are handled where they are read, in ``pulid_flux.inject``, which must
stay importable without ComfyUI.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging

log = logging.getLogger(__name__)

# io.Schema fields that ComfyUI 0.33 has and 0.8.0 lacks. Only these may be dropped on an older
# ComfyUI; any other unknown field still reaches io.Schema and fails there (a typo stays an error).
NEWER_SCHEMA_FIELDS = frozenset({"search_aliases", "is_dev_only", "price_badge", "accept_all_inputs",
                                 "essentials_category", "has_intermediate_output"})


@functools.lru_cache(maxsize=None)
def input_accepts(input_cls, option: str) -> bool:
    """Whether ``input_cls`` (an ``io.X.Input`` class) takes the keyword ``option``."""
    try:
        parameters = inspect.signature(input_cls.__init__).parameters
    except (TypeError, ValueError):  # not introspectable: assume nothing beyond what 0.8.0 had
        return False
    return option in parameters


def advanced(input_cls) -> dict:
    """Keyword arguments that mark an input of ``input_cls`` as advanced, where ComfyUI knows the option.

    ``io.Float.Input("x", ..., **advanced(io.Float.Input))``: ``{"advanced": True}`` on ComfyUI
    versions whose input takes it, ``{}`` on older ones (the widget then simply shows).
    """
    return {"advanced": True} if input_accepts(input_cls, "advanced") else {}


def schema_fields(schema_cls=None) -> frozenset[str]:
    """The field names of ``io.Schema`` (or of ``schema_cls``, a dataclass) in this ComfyUI."""
    if schema_cls is None:
        from comfy_api.v0_0_2 import io  # here, so that the module imports (and is tested) without ComfyUI
        schema_cls = io.Schema
    return frozenset(f.name for f in dataclasses.fields(schema_cls))


def schema_options(schema_cls=None, **fields) -> dict:
    """``fields`` minus the newer ``io.Schema`` fields this ComfyUI lacks, to spread into ``io.Schema(...)``.

    Only fields named in ``NEWER_SCHEMA_FIELDS`` are ever dropped; anything else is passed through
    unchanged, so a misspelt field still fails loudly in ``io.Schema``.
    """
    known = schema_fields(schema_cls)
    kept = {name: value for name, value in fields.items() if name in known or name not in NEWER_SCHEMA_FIELDS}
    dropped = sorted(set(fields) - set(kept))
    if dropped:
        log.debug("PuLID-Flux Studio: this ComfyUI's io.Schema has no %s; left out", ", ".join(dropped))
    return kept
