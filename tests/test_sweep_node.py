"""Canvas visibility: a finished sweep read back, and the "Load checkpoint sweep" node (needs COMFYUI_PATH)."""

import numpy as np
import pytest
from test_sweep_outputs import CHECKPOINTS, fake_rows, info

from pulid_flux.sweep.outputs import write_sweep_outputs
from pulid_flux.sweep.view import SweepResultError, load_sweep_result, pad_to_batch


@pytest.fixture
def sweep_folder(tmp_path):
    rows = fake_rows(tmp_path, identity=[[0.40, 0.42, 0.41, 0.43], [0.60, 0.61, 0.62, 0.61], [0.62, 0.63, 0.62, 0.63]],
                     clip=[0.31, 0.305, 0.26])
    write_sweep_outputs(tmp_path, rows, CHECKPOINTS, info=info(), delta=0.02, epsilon=0.01)
    return tmp_path


def test_a_sweep_reads_back_in_prompt_order(sweep_folder):
    view = load_sweep_result(sweep_folder)
    assert view.recommendation.startswith("Recommended checkpoint: id_000000500.safetensors\nWhy: step 500")
    assert [tag for tag, _ in view.strips] == ["park-wave", "studio-headshot"]
    assert view.curve is not None and view.curve.shape[2] == 3


def test_not_a_sweep_folder(tmp_path):
    with pytest.raises(SweepResultError, match="no report.md"):
        load_sweep_result(tmp_path)


def test_pad_to_batch_keeps_every_pixel():
    a, b = np.full((2, 3, 3), 5, np.uint8), np.full((4, 1, 3), 9, np.uint8)
    batch = pad_to_batch([a, b])
    assert batch.shape == (2, 4, 3, 3)
    assert (batch[0, :2, :3] == 5).all() and (batch[1, :4, :1] == 9).all() and batch[0, 3, 0, 0] == 24


def test_load_sweep_node(pack_nodes, sweep_folder):
    node = pack_nodes("sweep").LoadSweep
    schema = node.GET_SCHEMA()
    assert schema.node_id == "PulidStudioLoadSweep"
    assert [i.id for i in schema.inputs] == ["sweep_folder"]
    assert node.GET_NODE_INFO_V1()["output"] == ["STRING", "STRING", "IMAGE", "IMAGE"]
    out = node.execute(str(sweep_folder))
    recommendation, report, strips, curve = out.args
    assert recommendation.splitlines()[0] == "Recommended checkpoint: id_000000500.safetensors"
    assert "| 500 ★ |" in report
    assert strips.shape[0] == 2 and strips.shape[-1] == 3 and 0.0 <= float(strips.min()) <= float(strips.max()) <= 1.0
    assert curve.shape[0] == 1
    assert len(out.ui["images"]) == 3                     # two strips and the curve, previewed on the node
    before = node.fingerprint_inputs(str(sweep_folder))
    (sweep_folder / "report.md").write_text((sweep_folder / "report.md").read_text() + "\n")
    assert node.fingerprint_inputs(str(sweep_folder)) != before
    with pytest.raises(ValueError, match="sweep_folder is empty"):
        node.execute("  ")
