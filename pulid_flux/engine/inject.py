"""Inject a PuLID identity into a ComfyUI Flux model through its own block hooks.

``apply_pulid`` returns a patched *clone* of a ComfyUI ModelPatcher; the model passed in is never
touched. It registers replace patches at ``patches_replace["dit"][("double_block", i)]`` for
i = 0, 2, 4, … and ``("single_block", i)`` for i = 0, 4, 8, … (the 20 positions of FLUX.1, counted
from the model's own block lists). Each patch runs the block it replaces (or the patch that already
sat on that hook, so several identities stack and SkipLayerGuidance keeps working), then adds
``weight * CA_k(id_tokens, image_tokens)`` to the generated image tokens only. Flux's
``forward_orig`` is never replaced, which is what broke every earlier PuLID-Flux pack on ComfyUI
updates.

The same hooks serve every model :mod:`.families` accepts (FLUX.1 in any weight format, Kontext,
Chroma, Chroma Radiance): block counts, hidden size and patch size are read from the model, and a
DIFFUSION_MODEL wrapper records each call's generated-token grid, which is what tells generated
tokens from Kontext's reference tokens on every ComfyUI version (0.8 sets neither ``img_slice`` nor
``reference_image_num_tokens``).

This module imports ComfyUI lazily (inside functions), so ``pulid_flux`` stays importable and its
arithmetic testable without ComfyUI.
"""

import inspect
import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import PulidError
from .families import inspect_model
from .identity import PulidIdentity
from .model import PulidFlux

log = logging.getLogger(__name__)

UNCOND_MODES = ("same", "uncond_tokens", "none")
DOUBLE_INTERVAL = 2
SINGLE_INTERVAL = 4
ADDITIONAL_MODELS_KEY = "pulid_flux_studio"
WRAPPER_KEY = "pulid_flux_studio"
# Keys we add to the per-call transformer_options dict (a copy ComfyUI makes for every forward).
GRID_KEY = "pulid_studio_grid"
TXT_LEN_KEY = "pulid_studio_txt_len"
REACHED_KEY = "pulid_studio_hooks_reached"


def hook_positions(num_double: int, num_single: int) -> list[tuple[str, int]]:
    """The official PuLID-Flux injection points, in adapter order (adapter k = position k)."""
    return ([("double_block", i) for i in range(0, num_double, DOUBLE_INTERVAL)]
            + [("single_block", i) for i in range(0, num_single, SINGLE_INTERVAL)])


@dataclass
class Injection:
    """Everything one Apply-PuLID needs at sampling time. Shared (not copied) by its hooks."""

    pulid: PulidFlux
    tokens: torch.Tensor                 # (1, Q, D)
    uncond_tokens: torch.Tensor | None   # (1, Q, D), for uncond="uncond_tokens"
    weight: float
    sigma_start: float                   # identity is on for sigma_end <= sigma <= sigma_start
    sigma_end: float
    uncond: str = "same"
    mask: torch.Tensor | None = None     # (Bm, H, W) in [0, 1]

    def __deepcopy__(self, memo):
        # ComfyUI versions before PR #12382 deep-copied model_options on every clone(); the tokens
        # and adapters are read-only, so copies may share them.
        return self

    # -- per-call decisions ------------------------------------------------------------------
    def sample_plan(self, batch: int, transformer_options: dict) -> list[tuple[torch.Tensor, list[int]]]:
        """Group the batch rows that get the identity by the token set they get.

        Rows outside [start_at, end_at] (per-sample sigma) and, with uncond="none", rows of the
        uncond chunk get nothing.
        """
        active = [True] * batch
        sigmas = transformer_options.get("sigmas")
        if sigmas is not None:
            s = torch.as_tensor(sigmas).detach().float().flatten().cpu()
            if s.numel() == 1:
                s = s.expand(batch)
            if s.numel() == batch:
                active = [self.sigma_end <= float(v) <= self.sigma_start for v in s]
            else:
                log.warning("PuLID: %d sigmas for a batch of %d; using the first for all", s.numel(), batch)
                on = self.sigma_end <= float(s[0]) <= self.sigma_start
                active = [on] * batch

        kinds = transformer_options.get("cond_or_uncond") or [0]
        chunk = batch // len(kinds) if batch % len(kinds) == 0 else batch
        groups: dict[str, list[int]] = {}
        for row in range(batch):
            if not active[row]:
                continue
            is_uncond = chunk != batch and kinds[row // chunk] == 1
            if is_uncond and self.uncond == "none":
                continue
            key = "uncond" if is_uncond and self.uncond == "uncond_tokens" else "cond"
            groups.setdefault(key, []).append(row)
        plan = []
        for key, rows in groups.items():
            tokens = self.uncond_tokens if key == "uncond" else self.tokens
            plan.append((tokens, rows))
        return plan

    def mask_tokens(self, rows: list[int], batch: int, grid: tuple[int, int] | None, n_tokens: int,
                    transformer_options: dict, ref: torch.Tensor) -> torch.Tensor | None:
        """The mask for ``rows`` on the generated-token grid, as (len(rows), n_tokens, 1)."""
        if self.mask is None:
            return None
        h, w = grid if grid is not None else _grid_from_aspect(n_tokens, self.mask.shape[-2], self.mask.shape[-1])
        if h * w != n_tokens:
            raise PulidError(f"PuLID mask: a {h}x{w} token grid does not cover {n_tokens} image tokens")
        m = F.interpolate(self.mask[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)
        m = m.reshape(m.shape[0], h * w, 1)
        kinds = transformer_options.get("cond_or_uncond") or [0]
        per_chunk = batch // len(kinds) if batch % len(kinds) == 0 else batch
        index = torch.tensor([(r % per_chunk) % m.shape[0] for r in rows])
        return m[index].to(device=ref.device, dtype=ref.dtype)

    def add_to(self, total: torch.Tensor, k: int, image: torch.Tensor, transformer_options: dict, grid,
               plan) -> torch.Tensor:
        """``total + contribution(...)``; the common case (whole batch, no mask) in one fused GEMM."""
        if self.mask is None and len(plan) == 1 and len(plan[0][1]) == image.shape[0]:
            with torch.no_grad():
                return self.pulid.ca[k].forward_cast(plan[0][0], image, scale=self.weight, residual=total)
        return total + self.contribution(k, image, transformer_options, grid, plan)

    def contribution(self, k: int, image: torch.Tensor, transformer_options: dict, grid, plan) -> torch.Tensor:
        """``weight * mask * CA_k(tokens, image)`` on the planned rows, zero on the others."""
        ca = self.pulid.ca[k]
        batch, n = image.shape[0], image.shape[1]
        out = None
        for tokens, rows in plan:
            whole = len(rows) == batch
            sub = image if whole else image[rows]
            with torch.no_grad():
                c = ca.forward_cast(tokens, sub, scale=self.weight)
            mask = self.mask_tokens(rows, batch, grid, n, transformer_options, sub)
            if mask is not None:
                c = c * mask
            if whole:
                return c
            if out is None:
                out = torch.zeros_like(image)
            out[rows] = c
        return out


def _grid_from_aspect(n_tokens: int, mask_h: int, mask_w: int) -> tuple[int, int]:
    """Factor n_tokens = h*w with h/w closest to the mask's aspect (used when no wrapper told us)."""
    aspect = mask_h / mask_w
    best = None
    for h in range(1, n_tokens + 1):
        if n_tokens % h:
            continue
        w = n_tokens // h
        err = abs(h / w - aspect)
        if best is None or err < best[0]:
            best = (err, h, w)
    return best[1], best[2]


class PulidBlockHook:
    """The replace patch at one Flux block: run the block (or the patch before us), add identities.

    Several Apply-PuLID nodes on one model share one hook per block, holding all their injections:
    each identity's adapter reads the same block output and the contributions are summed, so two
    masked identities do not see each other. A non-PuLID patch found on the hook (SkipLayerGuidance,
    another pack) is kept as ``inner`` and called instead of the original block.
    """

    def __init__(self, injections: list[Injection], ca_index: int, block_type: str, inner=None):
        self.injections = list(injections)
        self.ca_index = ca_index
        self.block_type = block_type
        self.inner = inner

    @classmethod
    def stacked_on(cls, existing, injection: Injection, ca_index: int, block_type: str) -> "PulidBlockHook":
        if isinstance(existing, PulidBlockHook):
            return cls(existing.injections + [injection], ca_index, block_type, inner=existing.inner)
        return cls([injection], ca_index, block_type, inner=existing)

    def __deepcopy__(self, memo):
        return self

    def __call__(self, args, extra, **kwargs):
        out = self.inner(args, extra, **kwargs) if self.inner is not None else extra["original_block"](args)
        to = args.get("transformer_options")
        if to is None:
            to = {}
        reached = to.get(REACHED_KEY)
        if reached is not None:
            reached.append(self.ca_index)
        if self.block_type == "double_block":
            if "txt" in out:
                # Remember the text length for the single blocks of ComfyUI builds without img_slice.
                to[TXT_LEN_KEY] = out["txt"].shape[1]
            start = 0
        else:
            start = _text_length(to)
            if start is None:
                raise PulidError("PuLID: cannot tell text from image tokens in a single block "
                                 "(no img_slice in transformer_options and no double-block hook ran)")
        image = out["img"]
        # Generated tokens come first after the text; Kontext's reference tokens follow them.
        grid = to.get(GRID_KEY)
        if grid is not None:
            n_gen = grid[0] * grid[1]
        else:
            n_gen = image.shape[1] - start - sum(to.get("reference_image_num_tokens") or [])
        if n_gen <= 0 or start + n_gen > image.shape[1]:
            raise PulidError(f"PuLID: {n_gen} generated image tokens after {start} text tokens do not fit the "
                             f"{image.shape[1]} tokens of {self.block_type} {self.ca_index}")
        generated = image[:, start:start + n_gen]
        updated = generated
        for injection in self.injections:
            plan = injection.sample_plan(image.shape[0], to)
            if not plan or injection.weight == 0:
                continue
            # Each identity reads the block output itself (``generated``), not the previous sum.
            updated = injection.add_to(updated, self.ca_index, generated, to, grid, plan)
        if updated is generated:
            return out
        result = dict(out)
        if start == 0 and n_gen == image.shape[1]:
            result["img"] = updated
        else:
            result["img"] = torch.cat([image[:, :start], updated, image[:, start + n_gen:]], dim=1)
        return result


def _text_length(transformer_options: dict):
    img_slice = transformer_options.get("img_slice")
    if img_slice is not None:
        return int(img_slice[0])
    return transformer_options.get(TXT_LEN_KEY)


class CallWrapper:
    """DIFFUSION_MODEL wrapper: per call, records the generated-token grid and checks the hooks ran.

    The grid (tokens down, tokens across) of the generated image is what the hooks use to place masks
    and to leave Kontext's reference tokens alone. It is computed from the model's own patch size
    (2 for Flux and Chroma, 16 for Chroma Radiance's pixels). ``transformer_options`` is found by name
    in the model's forward signature: Flux passes it as the 8th positional argument, Chroma as the 6th.

    If a call finishes without reaching any PuLID hook, and none ever did, the model's forward does not
    consult ``patches_replace`` (something replaced it): that is an error rather than images without
    the identity. After the hooks have been seen once, a call without them is a cache step (TeaCache
    and the like skip whole steps) and passes.
    """

    def __init__(self):
        self.hooks_seen = False

    def __deepcopy__(self, memo):
        return self

    def __call__(self, executor, *args, **kwargs):
        bound = _bind(executor.original, args, kwargs)
        if bound is None or "transformer_options" not in bound.signature.parameters:
            log.warning("PuLID: cannot find transformer_options in %s; masks fall back to the mask's aspect",
                        getattr(executor.original, "__qualname__", executor.original))
            return executor(*args, **kwargs)
        reached = []
        options = dict(bound.arguments.get("transformer_options") or {})
        options[REACHED_KEY] = reached
        # The first parameter is the model input: Flux's latent, Chroma Radiance's pixels.
        first = next(iter(bound.arguments.values()), None)
        grid = _token_grid(first, getattr(executor.class_obj, "patch_size", 2))
        if grid is not None:
            options[GRID_KEY] = grid
        bound.arguments["transformer_options"] = options
        out = executor(*bound.args, **bound.kwargs)
        if reached:
            self.hooks_seen = True
        elif not self.hooks_seen:
            raise PulidError(
                f"Apply PuLID-Flux: {type(executor.class_obj).__name__} ran without calling any PuLID block hook, "
                "so its images would lack the identity. Something replaced the model's forward with one that "
                "ignores ComfyUI's 'dit' block patches (some cache/accelerator nodes do); remove that node or use "
                "a version of it that calls the block patches.")
        return out


def _bind(function, args, kwargs):
    """``inspect.signature(function).bind(...)``, or None if ``function`` cannot take these arguments."""
    try:
        return inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None


def _token_grid(x, patch: int):
    """(rows, columns) of patch tokens for an image/latent ``x`` of shape (B, C, H, W), padded to ``patch``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        return None
    patch = max(1, int(patch))
    return math.ceil(x.shape[-2] / patch), math.ceil(x.shape[-1] / patch)


def _ca_patcher(pulid: PulidFlux):
    """One ModelPatcher per loaded PuLID file, so ComfyUI loads/offloads the adapters with Flux."""
    patcher = getattr(pulid, "_comfy_patcher", None)
    if patcher is None:
        import comfy.model_management as mm
        import comfy.model_patcher
        # Plain ModelPatcher: the dynamic-VRAM patcher expects comfy.ops layers.
        patcher = comfy.model_patcher.ModelPatcher(pulid.ca, load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
        pulid._comfy_patcher = patcher
    return patcher


def apply_pulid(model, pulid: PulidFlux, identity: PulidIdentity, weight: float = 1.0,
                start_at: float = 0.0, end_at: float = 1.0, uncond: str = "same", mask=None):
    """Return a clone of the ComfyUI Flux ``model`` with ``identity`` injected. See module doc.

    uncond: "same" (identity on both CFG passes, what other packs do), "uncond_tokens" (official
    true-CFG: the IDFormer's all-zero output on the negative pass) or "none" (no identity there).
    mask: optional (H, W) or (B, H, W) tensor in [0, 1] limiting the identity to a region.
    """
    if uncond not in UNCOND_MODES:
        raise ValueError(f"uncond must be one of {UNCOND_MODES}, got {uncond!r}")
    if not 0.0 <= start_at <= 1.0 or not 0.0 <= end_at <= 1.0:
        raise ValueError(f"start_at and end_at are fractions of the schedule in [0, 1], got {start_at}, {end_at}")
    # Refuse a model the hooks cannot reach before anything else, weight 0 included: the user
    # should learn it from this node, not from a later render.
    target = inspect_model(model)
    m = model.clone()
    if weight == 0 or start_at >= end_at:
        log.info("PuLID: weight %s, window [%s, %s]: nothing to inject, model returned unpatched",
                 weight, start_at, end_at)
        return m

    positions = hook_positions(target.num_double, target.num_single)
    if len(positions) != pulid.num_ca:
        raise PulidError(
            f"this {target.family} model has {target.num_double} double and {target.num_single} single blocks "
            f"({len(positions)} PuLID injection points) but {pulid.source} has {pulid.num_ca} adapters; "
            "PuLID-Flux fits FLUX.1 and Chroma (19 + 38 blocks)")
    if target.hidden_size is not None and target.hidden_size != pulid.ca_dim:
        raise PulidError(f"{target.family} hidden size is {target.hidden_size} but {pulid.source} was trained "
                         f"for {pulid.ca_dim}")
    if identity.token_dim != pulid.token_dim:
        raise PulidError(f"identity tokens are {identity.token_dim}-d; {pulid.source} expects {pulid.token_dim}-d")

    uncond_tokens = identity.uncond_tokens
    if uncond == "uncond_tokens" and uncond_tokens is None:
        uncond_tokens = pulid.encode_uncond(1)
    sampling = m.get_model_object("model_sampling")
    injection = Injection(
        pulid=pulid, tokens=identity.tokens[:1], uncond_tokens=None if uncond_tokens is None else uncond_tokens[:1],
        weight=float(weight), sigma_start=float(sampling.percent_to_sigma(start_at)),
        sigma_end=float(sampling.percent_to_sigma(end_at)), uncond=uncond,
        mask=_prepare_mask(mask))

    existing = m.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    for k, (block_type, index) in enumerate(positions):
        hook = PulidBlockHook.stacked_on(existing.get((block_type, index)), injection, k, block_type)
        m.set_model_patch_replace(hook, "dit", block_type, index)

    import comfy.patcher_extension as pe
    if not m.get_wrappers(pe.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY):
        m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY, CallWrapper())
    patcher = _ca_patcher(pulid)
    attached = m.get_additional_models_with_key(ADDITIONAL_MODELS_KEY)
    # clone() clones additional models, so compare the modules they hold.
    if all(p.model is not patcher.model for p in attached):
        m.set_additional_models(ADDITIONAL_MODELS_KEY, list(attached) + [patcher])
    log.info("PuLID: %s, %d hooks, weight %.3f, sigma window [%.4f, %.4f], uncond=%s%s", target.family,
             len(positions), weight, injection.sigma_end, injection.sigma_start, uncond,
             ", masked" if mask is not None else "")
    return m


def _prepare_mask(mask):
    if mask is None:
        return None
    mask = torch.as_tensor(mask).detach().float().cpu()
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise ValueError(f"PuLID mask must be (H, W) or (B, H, W), got {tuple(mask.shape)}")
    return mask.clamp(0, 1)
