"""Node: show a checkpoint sweep's recommendation, strips and curve in the canvas."""

import os

import folder_paths
import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from ..pulid_flux.sweep.view import load_sweep_result, pad_to_batch
from .types import category, display_name, node_id


def _folder(sweep_folder: str) -> str:
    """Absolute folders as given; relative ones under ComfyUI's output directory."""
    path = os.path.expanduser(sweep_folder.strip())
    if not path:
        raise ValueError("sweep_folder is empty: give the --out folder of `pulid-studio sweep` (absolute, or "
                         "relative to ComfyUI's output folder)")
    return path if os.path.isabs(path) else os.path.join(folder_paths.get_output_directory(), path)


def _tensor(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(batch.astype(np.float32) / 255.0)


class LoadSweep(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("LoadSweep"),
            display_name=display_name("Load checkpoint sweep"),
            category=category("Scoring"),
            description="Loads the result of `pulid-studio sweep` (its --out folder): the recommended checkpoint "
                        "and why, one strip per prompt (the same prompt and seed at every checkpoint, in step "
                        "order) and the score curves, shown on the node.",
            inputs=[
                io.String.Input("sweep_folder", default="",
                                tooltip="The sweep's --out folder: absolute, or relative to ComfyUI's output "
                                        "folder. Re-read whenever its report.md changes."),
            ],
            outputs=[
                io.String.Output(display_name="recommendation",
                                 tooltip="'Recommended checkpoint: <file>' and the reason."),
                io.String.Output(display_name="report", tooltip="The whole report.md (table, rule, settings)."),
                io.Image.Output(display_name="strips",
                                tooltip="One strip per prompt (padded to one size): columns are the checkpoints."),
                io.Image.Output(display_name="curve", tooltip="Every score against the step."),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, sweep_folder: str = "", **kwargs):
        # A re-run of the sweep rewrites report.md: the node must read it again.
        try:
            stat = os.stat(os.path.join(_folder(sweep_folder), "report.md"))
        except (OSError, ValueError):
            return sweep_folder
        return f"{sweep_folder}:{stat.st_mtime_ns}:{stat.st_size}"

    @classmethod
    def execute(cls, sweep_folder: str = "") -> io.NodeOutput:
        view = load_sweep_result(_folder(sweep_folder))
        pictures = [image for _, image in view.strips] + ([view.curve] if view.curve is not None else [])
        if not pictures:
            raise ValueError(f"{view.folder}: the sweep wrote no strips and no curve")
        strips = _tensor(pad_to_batch([image for _, image in view.strips] or pictures))
        curve = _tensor(pad_to_batch([view.curve if view.curve is not None else pictures[0]]))
        previews = [ui.PreviewImage(_tensor(pad_to_batch([p])), cls=cls).as_dict()["images"] for p in pictures]
        return io.NodeOutput(view.recommendation, view.report, strips, curve,
                             ui={"images": [item for items in previews for item in items]})


NODE_LIST = [LoadSweep]
