"""Wire types shared by the pack's nodes (on the wire each is just its type string)."""

from comfy_api.v0_0_2 import io

CATEGORY = "PuLID-Flux Studio"

PulidFluxType = io.Custom("PULID_FLUX")            # pulid_flux.PulidFlux (+ its ModelPatcher)
PulidIdentityType = io.Custom("PULID_IDENTITY")    # pulid_flux.PulidIdentity
EvaClipType = io.Custom("PULID_EVA_CLIP")          # pulid_flux.engine.eva.EvaVisionTower holder
FaceEngineType = io.Custom("PULID_FACE_ENGINE")    # pulid_flux.face engine
FaceParserType = io.Custom("PULID_FACE_PARSER")    # BiSeNet parser holder
PoseKeypointType = io.Custom("POSE_KEYPOINT")      # comfyui_controlnet_aux / core layout


def node_id(name: str) -> str:
    """Unique node id: every pack that ships 'ApplyPulidFlux' collides with the others."""
    return f"PulidStudio{name}"


def display_name(title: str) -> str:
    return f"{title} (PuLID-Flux Studio)"


def category(sub: str | None = None) -> str:
    return f"{CATEGORY}/{sub}" if sub else CATEGORY
