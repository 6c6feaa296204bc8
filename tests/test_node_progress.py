"""nodes/progress.py on ComfyUI's own ``comfy.utils.ProgressBar`` (needs COMFYUI_PATH): the same
calls work on 0.8.0 and 0.33.0; 0.33 only drops updates in between (throttling), never the first
or the last."""

import pytest

pytestmark = pytest.mark.integration


def test_comfy_progress_drives_comfyuis_bar(pack_nodes, comfy_progress_calls):
    progress = pack_nodes("progress").comfy_progress
    bar = progress(4)
    for done in range(1, 5):
        bar(done, 4, "score")
    assert comfy_progress_calls[0] == (1, 4) and comfy_progress_calls[-1] == (4, 4)
    assert [value for value, _ in comfy_progress_calls] == sorted(value for value, _ in comfy_progress_calls)
    assert all(total == 4 for _, total in comfy_progress_calls)


def test_a_single_item_gets_no_bar(pack_nodes, comfy_progress_calls):
    assert pack_nodes("progress").comfy_progress(1) is None and pack_nodes("progress").comfy_progress(0) is None
    assert comfy_progress_calls == []
