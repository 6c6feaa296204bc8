"""A real ComfyUI server imports the pack: every node listed, categorised and documented."""

import pytest

pytestmark = pytest.mark.integration

EXPECTED_NODES = {
    "PulidStudioLoadPulidFlux", "PulidStudioLoadEvaClip", "PulidStudioApplyPulidFlux",
    "PulidStudioSaveIdentity", "PulidStudioLoadIdentity",
    "PulidStudioLoadFaceEngine", "PulidStudioLoadFaceParser", "PulidStudioEncodeIdentity",
    "PulidStudioPoseFromBank", "PulidStudioRenderPose", "PulidStudioEditPose", "PulidStudioLoadPoseJSON",
    "PulidStudioPoseForPrompt", "PulidStudioApplyPoseControlNet",
    "PulidStudioScoreIdentity", "PulidStudioLoadSweep",
    "PulidStudioDatasetFilter", "PulidStudioDatasetCrop", "PulidStudioDatasetCaption", "PulidStudioDatasetSave",
    "PulidStudioHeadPoseView", "PulidStudioGeometricCaption", "PulidStudioIdentityPoseFilter",
}


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.get_json("/object_info")


def ours(object_info):
    return {k: v for k, v in object_info.items() if k.startswith("PulidStudio")}


def test_pack_imported_without_failure(comfy_server, object_info):
    # Only the pack's own lines: ComfyUI's built-in extras may fail on their own (e.g. the audio
    # nodes without torchaudio), which says nothing about this pack.
    lines = [line for line in comfy_server.log_text().splitlines() if "pulid_flux_studio" in line]
    timing = [line for line in lines if " seconds" in line]   # "Import times for custom nodes:"
    assert timing, "the pack is missing from ComfyUI's custom-node import times"
    assert not any("IMPORT FAILED" in line for line in timing), timing
    assert not any("Cannot import" in line or "comfy_entrypoint" in line for line in lines), lines
    assert EXPECTED_NODES <= set(ours(object_info))


def test_nodes_are_categorised_and_documented(object_info):
    for name, info in ours(object_info).items():
        assert info["category"].startswith("PuLID-Flux Studio"), name
        assert info["display_name"].endswith("(PuLID-Flux Studio)"), name
        assert info["description"], f"{name} has no description"
        for section in ("required", "optional"):
            for input_name, spec in info["input"].get(section, {}).items():
                options = spec[1] if len(spec) > 1 else {}
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_model_files_are_listed(object_info):
    pulid_files = object_info["PulidStudioLoadPulidFlux"]["input"]["required"]["pulid_file"][1]["options"]
    assert "pulid_flux_v0.9.1.safetensors" in pulid_files
    eva_files = object_info["PulidStudioLoadEvaClip"]["input"]["required"]["eva_file"][1]["options"]
    assert any("EVA02" in f for f in eva_files)
