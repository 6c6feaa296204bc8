"""Which ComfyUI models PuLID-Flux's block hooks can reach, read from the model itself.

PuLID-Flux adds its adapters through ``patches_replace["dit"][("double_block" | "single_block", i)]``.
Only diffusion models whose forward consults those hooks around FLUX.1-style double/single stream
blocks can take them: ComfyUI's ``Flux`` (FLUX.1 dev, schnell, Krea, Kontext and fine-tunes, whatever
the weight format: bf16, fp8, scaled fp8, GGUF through ComfyUI-GGUF) and ``Chroma`` (and Chroma
Radiance, its pixel-space subclass). Anything else is refused here with one error that says what the
model is, instead of sampling images that silently lack the identity.

Nothing here imports ComfyUI: classes are recognised by their qualified names along the MRO, so a
subclass (Chroma Radiance, a pack's Flux subclass) is accepted and the module stays testable alone.
"""

from dataclasses import dataclass

from ..errors import PulidError

#: qualified class name of a diffusion model -> family, for the classes whose forward calls the hooks
HOOKED_CLASSES = {
    "comfy.ldm.flux.model.Flux": "flux",
    "comfy.ldm.chroma.model.Chroma": "chroma",
}
#: ComfyUI ``image_model`` values built on those classes that PuLID-Flux's adapters do not fit
REFUSED_IMAGE_MODELS = {
    "flux2": "FLUX.2 (wider, shallower blocks than the FLUX.1 the adapters were trained on)",
}
SUPPORTED = ("FLUX.1 dev / schnell / Krea / Kontext and their fine-tunes (bf16, fp8, scaled fp8, "
             "GGUF through ComfyUI-GGUF) and Chroma")


@dataclass(frozen=True)
class HookedModel:
    """What the injection needs to know about a supported diffusion model."""

    family: str                 # "flux", "chroma" or "chroma_radiance" (ComfyUI's image_model when known)
    class_name: str
    num_double: int
    num_single: int
    hidden_size: int | None
    patch_size: int


def _qualified(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def hooked_family(diffusion_model) -> str | None:
    """The family whose forward calls the dit block hooks, or None."""
    for cls in type(diffusion_model).__mro__:
        family = HOOKED_CLASSES.get(_qualified(cls))
        if family is not None:
            return family
    return None


def _describe_config(model) -> tuple[str, str | None]:
    """(what ComfyUI detected the model as, its ``image_model``), for messages."""
    config = getattr(getattr(model, "model", None), "model_config", None)
    unet_config = getattr(config, "unet_config", None) or {}
    image_model = unet_config.get("image_model") if isinstance(unet_config, dict) else None
    label = type(config).__name__ if config is not None else "an unknown model"
    return label, image_model


def inspect_model(model) -> HookedModel:
    """Check that ``model`` (a ComfyUI ModelPatcher) can take PuLID-Flux's hooks; describe it.

    Raises :class:`PulidError` with the reason otherwise.
    """
    if not callable(getattr(model, "set_model_patch_replace", None)) or not callable(getattr(model, "clone", None)):
        raise PulidError(f"Apply PuLID-Flux needs a ComfyUI MODEL (a ModelPatcher that takes block patches); "
                         f"got a {type(model).__name__}")
    label, image_model = _describe_config(model)
    diffusion_model = model.get_model_object("diffusion_model")
    class_name = type(diffusion_model).__name__
    family = hooked_family(diffusion_model)
    if family is None:
        raise PulidError(
            f"Apply PuLID-Flux cannot reach this model: it is {label} (diffusion model {class_name}), which has no "
            f"FLUX.1 double/single blocks behind ComfyUI's 'dit' block hooks, so the identity would silently do "
            f"nothing. PuLID-Flux works with {SUPPORTED}.")
    if image_model in REFUSED_IMAGE_MODELS:
        raise PulidError(f"Apply PuLID-Flux does not fit {REFUSED_IMAGE_MODELS[image_model]}. "
                         f"PuLID-Flux works with {SUPPORTED}.")
    double_blocks = getattr(diffusion_model, "double_blocks", None)
    single_blocks = getattr(diffusion_model, "single_blocks", None)
    if double_blocks is None or single_blocks is None:
        raise PulidError(f"Apply PuLID-Flux: this {class_name} has no double_blocks/single_blocks lists to hook")
    return HookedModel(family=image_model or family, class_name=class_name, num_double=len(double_blocks),
                       num_single=len(single_blocks), hidden_size=getattr(diffusion_model, "hidden_size", None),
                       patch_size=int(getattr(diffusion_model, "patch_size", 2)))
