"""Headless client for ComfyUI: REST + websocket client, UI -> API workflow conversion, graph edits.

Never imports torch: it talks to a ComfyUI server over HTTP.
"""

from .client import ComfyClient, OutputFile, RunResult, image_reference
from .convert import is_api_prompt, is_ui_workflow, referenced_node_types, ui_to_api
from .errors import (
    ComfyClientError,
    ComfyConnectionError,
    ComfyHTTPError,
    ComfyServerError,
    ComfyStartError,
    ComfyTimeoutError,
    ConversionError,
    ExecutionError,
    ExecutionInterrupted,
    ObjectInfoError,
    OverrideError,
    UIFormatError,
    WorkflowFormatError,
    WorkflowValidationError,
)
from .overrides import apply_overrides, find_nodes, parse_override, rename_model, set_input, swap_class
from .transport import RetryPolicy

__all__ = [
    "ComfyClient", "ComfyClientError", "ComfyConnectionError", "ComfyHTTPError", "ComfyServerError",
    "ComfyStartError", "ComfyTimeoutError",
    "ConversionError", "ExecutionError", "ExecutionInterrupted", "ObjectInfoError", "OutputFile", "OverrideError",
    "RetryPolicy", "RunResult", "UIFormatError", "WorkflowFormatError", "WorkflowValidationError",
    "apply_overrides", "find_nodes", "image_reference", "is_api_prompt", "is_ui_workflow", "parse_override",
    "referenced_node_types", "rename_model", "set_input", "swap_class", "ui_to_api",
]
