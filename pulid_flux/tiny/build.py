"""Write the whole set of tiny models into a ComfyUI ``models`` folder.

``build_tiny_models(models_dir)`` creates the standard sub-folders and file names a user would
have, so a real ComfyUI pointed at ``models_dir`` (``--base-directory`` or an
``extra_model_paths.yaml``) lists and loads them with its stock loaders:

================================  ==========================================  ========================
name                              file (relative to ``models_dir``)           ComfyUI loader
================================  ==========================================  ========================
``flux``                          diffusion_models/flux1-dev.safetensors      UNETLoader
``clip_l``                        text_encoders/clip_l.safetensors            CLIPLoader (*)
``vae``                           vae/ae.safetensors                          VAELoader (**)
``lora``                          loras/identity_lora.safetensors             LoraLoaderModelOnly
``controlnet_union_pro``          controlnet/flux_union_pro.safetensors       ControlNetLoader
``controlnet_union_pro2``         controlnet/flux_union_pro2.safetensors      ControlNetLoader
``pulid``                         pulid/pulid_flux_v0.9.1.safetensors         (this pack)
``eva``                           clip/EVA02_CLIP_L_336_psz14_s6B.safetensors (this pack; a copy)
================================  ==========================================  ========================

(*) ``type="stable_diffusion"`` then ``CLIPTextEncode`` + ``FluxGuidance``; see :mod:`.clip_l`.
(**) in the TAESD (taef1) layout, which every supported ComfyUI decodes fast; see :mod:`.vae`.

The model-family files (:data:`FAMILY`) are written only when named in ``include``: a Kontext copy
of the tiny Flux, a tiny Chroma and Chroma Radiance (:mod:`.chroma`; ComfyUI loads them once
:mod:`.detection` lets it read their sizes), the tiny Flux in fp8 and scaled fp8 (:mod:`.fp8`) and
as Q8_0 / Q4_0 GGUF (:mod:`.gguf_flux`, for ComfyUI-GGUF's ``UnetLoaderGGUF``; needs the ``gguf``
package), and a tiny SD1.5 UNet (:mod:`.sd15`) that PuLID-Flux must refuse.

Files already written from the same configuration are reused (see :mod:`.files`), so repeated
test sessions cost a header read per file. A cold build takes a few seconds, mostly the
full-size CLIP-L (~236 MB).
"""

import argparse
import hashlib
import logging
import os
import shutil
from pathlib import Path

from .bisenet import save_random_bisenet
from .chroma import TINY_CHROMA, TINY_CHROMA_RADIANCE, write_chroma
from .clip_l import write_clip_l
from .controlnet import UNION_PRO, UNION_PRO2, write_controlnet
from .eva import write_eva
from .flux import TINY_FLUX, write_flux
from .fp8 import write_flux_fp8
from .insightface_pack import RECOGNIZER_FILE, build_pack
from .lora import write_lora
from .pulid import write_pulid
from .sd15 import write_sd15_unet
from .vae import write_vae

log = logging.getLogger(__name__)

FILES = {
    "flux": "diffusion_models/flux1-dev.safetensors",
    "clip_l": "text_encoders/clip_l.safetensors",
    "vae": "vae/ae.safetensors",
    "lora": "loras/identity_lora.safetensors",
    "controlnet_union_pro": "controlnet/flux_union_pro.safetensors",
    "controlnet_union_pro2": "controlnet/flux_union_pro2.safetensors",
    "pulid": "pulid/pulid_flux_v0.9.1.safetensors",
    "eva": "clip/EVA02_CLIP_L_336_psz14_s6B.safetensors",
    "bisenet": "facexlib/parsing_bisenet.pth",
    "insightface": "insightface/models/antelopev2",
    # the model families (written only when named in ``include``)
    "flux_kontext": "diffusion_models/flux1-kontext-dev.safetensors",
    "chroma": "diffusion_models/Chroma1-HD.safetensors",
    "chroma_radiance": "diffusion_models/Chroma1-Radiance.safetensors",
    "flux_fp8": "diffusion_models/flux1-dev-fp8-e4m3fn.safetensors",
    "flux_scaled_fp8": "diffusion_models/flux1-dev_fp8_scaled.safetensors",
    "flux_gguf_q8_0": "diffusion_models/flux1-dev-Q8_0.gguf",
    "flux_gguf_q4_0": "diffusion_models/flux1-dev-Q4_0.gguf",
    "sd15_unet": "diffusion_models/sd15_unet.safetensors",
}
FAMILY = ("flux_kontext", "chroma", "chroma_radiance", "flux_fp8", "flux_scaled_fp8", "flux_gguf_q8_0",
          "flux_gguf_q4_0", "sd15_unet")
GENERATED = tuple(name for name in FILES if name not in FAMILY)


def build_tiny_models(models_dir, *, include=None, eva_source=None, seed: int = 0) -> dict[str, Path]:
    """Write the tiny models into ``models_dir``; return ``{name: path}`` for every file handled.

    ``include``: names from :data:`FILES` (default: all but the :data:`FAMILY` files). ``eva_source``: an EVA02-CLIP file to
    copy (e.g. the golden tiny ``eva.safetensors``) instead of generating a random tiny tower. Each
    model gets its own seed derived from ``seed`` so that no two files share tensors.
    """
    models_dir = Path(models_dir)
    if include is None:
        names = list(GENERATED)
    else:
        names = list(dict.fromkeys(include))
        unknown = [n for n in names if n not in FILES]
        if unknown:
            raise ValueError(f"unknown tiny model(s) {unknown}; choose from {sorted(FILES)}")

    flux = TINY_FLUX
    writers = {
        "flux": lambda p: write_flux(p, flux, seed=seed),
        "clip_l": lambda p: write_clip_l(p, seed=seed + 1),
        "vae": lambda p: write_vae(p, seed=seed + 2),
        "lora": lambda p: write_lora(p, flux, seed=seed + 3),
        "controlnet_union_pro": lambda p: write_controlnet(p, UNION_PRO, seed=seed + 4),
        "controlnet_union_pro2": lambda p: write_controlnet(p, UNION_PRO2, seed=seed + 5),
        "pulid": lambda p: write_pulid(p, seed=seed + 6),
        "eva": lambda p: copy_if_changed(Path(eva_source), p) if eva_source else write_eva(p, seed=seed + 7),
        "bisenet": lambda p: p if p.is_file() else save_random_bisenet(p, seed=seed + 8),
        "insightface": lambda p: p if (p / RECOGNIZER_FILE).is_file() else build_pack(p, seed=seed + 9),
        # Kontext is FLUX.1-dev's architecture; the reference image makes the difference.
        "flux_kontext": lambda p: write_flux(p, flux, seed=seed + 10),
        "chroma": lambda p: write_chroma(p, TINY_CHROMA, seed=seed + 11),
        "chroma_radiance": lambda p: write_chroma(p, TINY_CHROMA_RADIANCE, seed=seed + 12),
        # fp8 and GGUF hold the tiny Flux's own tensors, so they compare with flux1-dev.safetensors.
        "flux_fp8": lambda p: write_flux_fp8(p, "fp8_e4m3fn", flux, seed=seed),
        "flux_scaled_fp8": lambda p: write_flux_fp8(p, "scaled_fp8", flux, seed=seed),
        "flux_gguf_q8_0": lambda p: _gguf(p, "Q8_0", seed),
        "flux_gguf_q4_0": lambda p: _gguf(p, "Q4_0", seed),
        "sd15_unet": lambda p: write_sd15_unet(p, seed=seed + 13),
    }
    manifest = {}
    for name in names:
        manifest[name] = Path(writers[name](models_dir / FILES[name]))
    return manifest


def _gguf(path: Path, qtype: str, seed: int) -> Path:
    # Imported here: it needs the gguf package, and only these files do.
    from .gguf_flux import write_flux_gguf
    return write_flux_gguf(path, qtype, TINY_FLUX, seed=seed)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def copy_if_changed(source: Path, dest: Path) -> Path:
    """Copy ``source`` to ``dest`` unless ``dest`` already has the same bytes."""
    if not source.is_file():
        raise FileNotFoundError(f"EVA02-CLIP source file {source} does not exist")
    if dest.is_file() and dest.stat().st_size == source.stat().st_size and _sha256(dest) == _sha256(source):
        log.debug("tiny eva: reusing %s", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("tiny eva: copied %s -> %s", source, dest)
    return dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pulid_flux.tiny.build",
                                     description="Write tiny random-weight Flux/PuLID models into a ComfyUI models folder.")
    parser.add_argument("models_dir")
    parser.add_argument("--only", nargs="+", choices=sorted(FILES), help="build only these files")
    parser.add_argument("--eva", help="EVA02-CLIP file to copy into clip/ (e.g. the golden tiny eva.safetensors)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = build_tiny_models(args.models_dir, include=args.only, eva_source=args.eva, seed=args.seed)
    for name, path in manifest.items():
        log.info("%-22s %s", name, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
