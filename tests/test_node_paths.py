"""The pack's model folders (nodes/paths.py): the one place an insightface pack is looked up, for
every node that loads one (Load face engine, Score identity). Needs COMFYUI_PATH."""

import pytest

from pulid_flux import PulidWeightsError
from pulid_flux.tiny import insightface_pack as synth


@pytest.fixture(scope="module")
def paths(pack_nodes):
    return pack_nodes("paths")


@pytest.fixture
def roots(paths, tmp_path, monkeypatch):
    """Two insightface folders, as models/insightface plus an extra_model_paths.yaml entry."""
    first, second = tmp_path / "models" / "insightface", tmp_path / "extra" / "insightface"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    monkeypatch.setattr(paths.folder_paths, "get_folder_paths",
                        lambda name: [str(first), str(second)] if name == paths.INSIGHTFACE else [])
    return first, second


def test_the_first_folder_holding_the_pack_wins(paths, roots):
    first, second = roots
    in_second = synth.build_pack(second / "models" / "antelopev2", decoys=False)
    assert paths.insightface_pack_dir("antelopev2") == in_second
    in_first = synth.build_pack(first / "models" / "antelopev2", nested=True, decoys=False)   # the zip's layout
    assert paths.insightface_pack_dir("antelopev2") == in_first
    assert paths.insightface_packs() == ["antelopev2"]


def test_a_missing_pack_names_every_folder_tried(paths, roots):
    with pytest.raises(Exception, match="insightface pack 'buffalo_l' not found") as info:
        paths.insightface_pack_dir("buffalo_l")
    assert type(info.value).__name__ == PulidWeightsError.__name__     # the pack's own copy of the class
    assert all(str(root / "models" / "buffalo_l") in str(info.value) for root in roots)
    assert "put its .onnx files in models/insightface/models/buffalo_l/" in str(info.value)


def test_both_nodes_load_the_pack_through_it(pack_nodes, paths, roots, monkeypatch):
    asked = []
    real = paths.insightface_pack_dir
    monkeypatch.setattr(paths, "insightface_pack_dir", lambda pack: asked.append(pack) or real(pack))
    synth.build_pack(roots[0] / "models" / "antelopev2", decoys=False)
    engine = pack_nodes("face").LoadFaceEngine.execute("insightface", pack="antelopev2", provider="cpu")[0]
    assert engine.name == "insightface:antelopev2"
    with pytest.raises(ValueError):          # no images: fails after the engine was loaded
        pack_nodes("scoring").ScoreIdentity.execute(None, None, engine="insightface", insightface_pack="antelopev2")
    assert asked == ["antelopev2"]
