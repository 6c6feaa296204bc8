"""A ready-to-run ostris/ai-toolkit config for a FLUX.1-dev identity LoRA on the prepared dataset.

The layout follows ai-toolkit's ``config/examples/train_lora_flux_24gb.yaml`` (``job: extension``,
one ``sd_trainer`` process); run it with ``python run.py ai-toolkit.yaml`` in an ai-toolkit checkout.
Values that differ from that example, and why: LoRA rank 32/32 (the ai-toolkit UI's default; a
face needs more capacity than the example's 16), batch size 2 and 2500 steps (identity LoRAs on
10-40 photos), resolutions 768 and 1024 (ai-toolkit never upscales and every crop here is at least
1024 on its short side), no mirror augmentation (faces are not symmetric).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

SAMPLE_SCENES = (
    "close-up, soft window light, neutral background",
    "portrait, wearing a dark coat, city street at night, bokeh",
    "medium shot, sitting in a cafe, reading a book, warm light",
    "full body, walking on a beach at sunset",
)


@dataclass
class TrainingConfig:
    """The knobs of the generated config that users change most often."""

    name: str | None = None                      # None: from the trigger word
    steps: int = 2500
    lr: float = 1e-4
    batch_size: int = 2
    rank: int = 32
    alpha: int = 32
    resolution: list[int] = field(default_factory=lambda: [768, 1024])
    save_every: int = 250
    sample_every: int = 250
    base_model: str = "black-forest-labs/FLUX.1-dev"
    device: str = "cuda:0"

    def to_dict(self) -> dict:
        return asdict(self)


def config_name(trigger: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", trigger).strip("_").lower()
    return f"{slug or 'identity'}_flux_lora"


def dataset_entry(folder, resolution, *, is_reg: bool = False) -> dict:
    entry = {
        "folder_path": str(Path(folder).resolve()),
        "caption_ext": "txt",
        "caption_dropout_rate": 0.05,
        "shuffle_tokens": False,
        "cache_latents_to_disk": True,
        "resolution": list(resolution),
    }
    if is_reg:
        # Regularization ("grounding") images: other people from the base model, captioned without the
        # trigger; ai-toolkit does not prepend the trigger to is_reg captions.
        entry["is_reg"] = True
    return entry


def build_config(dataset_dir, trigger: str, training: TrainingConfig | None = None,
                 training_folder=None, *, reg_dir=None, sample_prompts=None) -> dict:
    """The config as a dict; ``dataset_dir`` (and ``reg_dir``, a regularization folder) are written as
    absolute paths. ``sample_prompts`` replace the default sample prompts (trigger + SAMPLE_SCENES)."""
    t = training or TrainingConfig()
    dataset_dir = Path(dataset_dir).resolve()
    name = t.name or config_name(trigger)
    datasets = [dataset_entry(dataset_dir, t.resolution)]
    if reg_dir is not None:
        datasets.append(dataset_entry(reg_dir, t.resolution, is_reg=True))
    prompts = list(sample_prompts) if sample_prompts else [f"{trigger}, {scene}" for scene in SAMPLE_SCENES]
    process = {
        "type": "sd_trainer",
        "training_folder": str(Path(training_folder).resolve() if training_folder else dataset_dir.parent / "training"),
        "device": t.device,
        "trigger_word": trigger,
        "network": {"type": "lora", "linear": t.rank, "linear_alpha": t.alpha},
        "save": {"dtype": "float16", "save_every": t.save_every, "max_step_saves_to_keep": 4, "push_to_hub": False},
        "datasets": datasets,
        "train": {
            "batch_size": t.batch_size,
            "steps": t.steps,
            "gradient_accumulation_steps": 1,
            "train_unet": True,
            "train_text_encoder": False,
            "gradient_checkpointing": True,
            "noise_scheduler": "flowmatch",
            "optimizer": "adamw8bit",
            "lr": float(t.lr),
            "ema_config": {"use_ema": True, "ema_decay": 0.99},
            "dtype": "bf16",
        },
        "model": {"name_or_path": t.base_model, "is_flux": True, "quantize": True},
        "sample": {
            "sampler": "flowmatch",
            "sample_every": t.sample_every,
            "width": 1024,
            "height": 1024,
            "prompts": prompts,
            "neg": "",
            "seed": 42,
            "walk_seed": True,
            "guidance_scale": 4,
            "sample_steps": 20,
        },
    }
    return {"job": "extension", "config": {"name": name, "process": [process]},
            "meta": {"name": "[name]", "version": "1.0"}}


def write_config(path, config: dict) -> Path:
    path = Path(path)
    path.write_text("# ostris/ai-toolkit config, written by PuLID-Flux Studio's dataset preparation.\n"
                    "# Train with: python run.py " + path.name + "\n"
                    + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
