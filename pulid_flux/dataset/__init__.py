"""Face-aware dataset preparation for identity LoRA training (ostris/ai-toolkit, FLUX.1-dev).

``prepare_dataset(input_dir, output_dir, trigger, engine)`` scans a folder, finds the subject (from
reference photos or as the identity seen most often), accepts or rejects each photo with one reason
code, crops and resizes the accepted ones around the subject, captions them and writes
``OUTPUT_DIR/dataset/`` (image + caption pairs), ``ai-toolkit.yaml``, ``report.json`` and
``report.html``. The steps are also usable one by one (the ComfyUI nodes do so on IMAGE batches).
"""

from .aitoolkit import TrainingConfig, build_config, write_config
from .batch import DatasetBatch, SavedBatch, caption_batch, crop_batch, filter_images, save_batch
from .caption import build_caption, check_trigger
from .crop import blur_faces, output_size, plan_crop, render_crop, shot_type
from .export import (CONFIG_YAML, DATASET_DIR, REPORT_HTML, REPORT_JSON, build_report, item_record,
                     prepare_output_dir, save_pair, write_item, write_report)
from .items import ACCEPTED, REJECTED, CropPlan, DatasetItem
from .judge import drop_duplicates, judge, match_subject
from .options import REASONS, SHOT_TYPES, SIMILARITY_THRESHOLDS, PrepareOptions, default_similarity_threshold
from .pipeline import (PrepareResult, analyse_images, decide, load_reference_files, prepare_dataset,
                       reference_faces, select_subject)
from .quality import face_sharpness, hamming, perceptual_hash
from .report_html import write_contact_sheet
from .subject import Subject, find_subject, subject_from_faces

__all__ = [
    "prepare_dataset", "PrepareResult", "PrepareOptions", "TrainingConfig", "REASONS", "SHOT_TYPES",
    "DatasetBatch", "SavedBatch", "filter_images", "crop_batch", "caption_batch", "save_batch",
    "SIMILARITY_THRESHOLDS", "default_similarity_threshold",
    "DatasetItem", "CropPlan", "ACCEPTED", "REJECTED",
    "analyse_images", "select_subject", "decide", "reference_faces", "load_reference_files",
    "Subject", "find_subject", "subject_from_faces", "judge", "match_subject", "drop_duplicates",
    "plan_crop", "render_crop", "blur_faces", "output_size", "shot_type",
    "build_caption", "check_trigger", "face_sharpness", "perceptual_hash", "hamming",
    "build_config", "write_config", "build_report", "item_record", "write_report", "write_contact_sheet",
    "prepare_output_dir", "write_item", "save_pair", "DATASET_DIR", "REPORT_JSON", "REPORT_HTML", "CONFIG_YAML",
]
