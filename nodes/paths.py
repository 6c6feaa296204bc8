"""Model folders the pack reads, registered with ComfyUI's folder_paths (merging, never replacing).

extra_model_paths.yaml is applied before custom nodes import, so a user's extra `pulid:` or
`insightface:` paths are already in the registry: we only add the default folder and set the file
extensions, keeping every path already there.
"""

import os

import folder_paths

PULID = "pulid"
IDENTITIES = "pulid_identities"
INSIGHTFACE = "insightface"
FACEXLIB = "facexlib"
POSES = "poses"
CLIP_SCORE = "clip_score"       # open_clip models for the checkpoint sweep's CLIP score (pulid_flux.sweep)
EVA = "text_encoders"            # EVA02-CLIP sits with the text encoders ("clip" is its legacy name)

_FOLDERS = {
    PULID: set(folder_paths.supported_pt_extensions),
    IDENTITIES: {".pulidembd"},
    INSIGHTFACE: set(),          # holds model-pack folders, not files
    FACEXLIB: set(folder_paths.supported_pt_extensions),
    POSES: {".json"},
    CLIP_SCORE: {".safetensors", ".pt", ".pth", ".bin"},
}


def register_model_folders() -> None:
    for name, extensions in _FOLDERS.items():
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name), is_default=True)
        paths, existing = folder_paths.folder_names_and_paths[name]
        folder_paths.folder_names_and_paths[name] = (paths, set(existing) | extensions)
    # Saved identities are outputs too; list them wherever the user keeps them.
    folder_paths.add_model_folder_path(IDENTITIES, identity_output_dir())


def identity_output_dir() -> str:
    return os.path.join(folder_paths.get_output_directory(), IDENTITIES)


def eva_files() -> list[str]:
    """EVA-CLIP candidates among the text encoders; every file if none is named like EVA."""
    files = folder_paths.get_filename_list(EVA)
    eva = [f for f in files if "eva" in os.path.basename(f).lower()]
    return eva or files


def insightface_packs() -> list[str]:
    """Model-pack folder names under every insightface/models directory (antelopev2, buffalo_l, …)."""
    packs = set()
    for root in folder_paths.get_folder_paths(INSIGHTFACE):
        models = os.path.join(root, "models")
        if os.path.isdir(models):
            packs.update(d for d in os.listdir(models) if os.path.isdir(os.path.join(models, d)))
    return sorted(packs) or ["antelopev2"]


def insightface_pack_dir(pack: str):
    """The folder holding ``pack``'s .onnx files: the first insightface folder (``models/insightface``,
    then any ``extra_model_paths.yaml`` entry) where :func:`find_pack_dir` finds it. Every node that
    loads a pack goes through here."""
    from ..pulid_flux.errors import PulidWeightsError
    from ..pulid_flux.face.insightface_engine import find_pack_dir

    problems = []
    for root in folder_paths.get_folder_paths(INSIGHTFACE):
        try:
            return find_pack_dir(root, pack)
        except PulidWeightsError as exc:
            problems.append(exc.problem)
    raise PulidWeightsError(f"models/insightface/models/{pack}",
                            f"insightface pack {pack!r} not found in any insightface folder "
                            f"({'; '.join(problems) or 'no insightface folder registered'}); put its .onnx files in "
                            f"models/insightface/models/{pack}/")
