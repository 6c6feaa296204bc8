"""Nodes: save and load a PuLID identity as a .pulidembd file (readable by stable-diffusion.cpp)."""

import os

from comfy_api.v0_0_2 import io, ui

import folder_paths

from ..pulid_flux.engine.identity import load_identity, save_identity
from . import paths
from .types import PulidIdentityType, category, display_name, node_id


class SaveIdentity(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("SaveIdentity"),
            display_name=display_name("Save identity"),
            category=category("PuLID"),
            description="Writes the identity to output/pulid_identities/<prefix>_NNNNN.pulidembd (GGUF, the format "
                        "stable-diffusion.cpp's --pulid-id reads), so faces are encoded once and reused.",
            inputs=[
                PulidIdentityType.Input("identity", tooltip="From Encode identity."),
                io.String.Input("filename_prefix", default="identity",
                                tooltip="File name prefix; a counter is appended."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, identity, filename_prefix="identity") -> io.NodeOutput:
        out_dir = paths.identity_output_dir()
        full_dir, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, out_dir)
        file = f"{name}_{counter:05}.pulidembd"
        save_identity(identity, os.path.join(full_dir, file))
        rel = os.path.join(subfolder, file) if subfolder else file
        return io.NodeOutput(ui=ui.PreviewText(f"saved {paths.IDENTITIES}/{rel}"))


class LoadIdentity(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("LoadIdentity"),
            display_name=display_name("Load identity"),
            category=category("PuLID"),
            description="Reads a .pulidembd identity (ours or one exported by stable-diffusion.cpp's script).",
            inputs=[io.Combo.Input("identity_file", options=folder_paths.get_filename_list(paths.IDENTITIES),
                                   tooltip="From models/pulid_identities or output/pulid_identities.")],
            outputs=[PulidIdentityType.Output(display_name="identity",
                                              tooltip="ID tokens (and no-identity tokens) for Apply PuLID-Flux.")],
        )

    @classmethod
    def execute(cls, identity_file) -> io.NodeOutput:
        return io.NodeOutput(load_identity(folder_paths.get_full_path_or_raise(paths.IDENTITIES, identity_file)))


NODE_LIST = [SaveIdentity, LoadIdentity]
