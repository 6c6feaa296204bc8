"""A sweep's outputs from scored rows, and scoring real photos (dlib identity, tiny CLIP, memorization)."""

import csv
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from pulid_flux.sweep.outputs import write_sweep_outputs
from pulid_flux.sweep.report import SweepInfo, ablation_spec_data, write_ablation_spec
from pulid_flux.sweep.table import COLUMNS, STYLE_COLUMNS, SweepRow, read_sweep_csv

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
CHECKPOINTS = [("id_000000250.safetensors", "250"), ("id_000000500.safetensors", "500"), ("id.safetensors", "final")]


def fake_rows(tmp_path, identity, clip, *, tags=("park-wave", "studio-headshot"), seeds=(42, 7)):
    rows = []
    rng = np.random.default_rng(0)
    for (checkpoint, label), ids, clips in zip(CHECKPOINTS, identity, clip):
        for t, tag in enumerate(tags):
            for s, seed in enumerate(seeds):
                file = f"gallery/{checkpoint[:-12]}/{t + 1:02d}_{tag}_s{seed}.png"
                (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (80, 64, 3), dtype=np.uint8)).save(tmp_path / file)
                value = ids[t * len(seeds) + s] if ids is not None else None
                rows.append(SweepRow(step=label, checkpoint=checkpoint, prompt=tag, seed=seed, file=file,
                                     identity_arcface=value, identity_dlib=None, clip_score=clips,
                                     face_found=value is not None))
    return rows


def info(**extra):
    return SweepInfo(checkpoint_dir="/data/lora", spec="workflows/ablation.yaml", config="02_lora",
                     reference=["me.jpg"], clip_model="pulid-tiny-clip", identity_column="identity_arcface",
                     engines={"identity_arcface": "tiny", "identity_dlib": "empty"}, **extra)


def test_outputs_recommend_the_knee_and_write_every_file(tmp_path):
    rows = fake_rows(tmp_path, identity=[[0.40, 0.42, 0.41, 0.43], [0.60, 0.61, 0.62, 0.61], [0.62, 0.63, 0.62, 0.63]],
                     clip=[0.31, 0.305, 0.26])
    result = write_sweep_outputs(tmp_path, rows, CHECKPOINTS, info=info(), delta=0.02, epsilon=0.01)
    assert result.recommendation.name == "id_000000500.safetensors"
    with open(tmp_path / "sweep.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == COLUMNS
    back, style = read_sweep_csv(tmp_path / "sweep.csv")
    assert back == rows and not style
    report = (tmp_path / "report.md").read_text()
    assert "Recommended checkpoint: id_000000500.safetensors\n" in report
    assert "δ = 0.02, ε = 0.01" in report and "--delta" in report and "--epsilon" in report
    assert "| 500 ★ | `id_000000500.safetensors` | 4 | 0% | 0.610 ± 0.007 |" in report
    assert Image.open(tmp_path / "curve.png").size[0] > 500
    strips = sorted(p.name for p in (tmp_path / "strips").iterdir())
    assert strips == ["park-wave.png", "studio-headshot.png"]
    # Three checkpoint columns and two seed rows of 80 px tiles.
    strip = Image.open(tmp_path / "strips" / "park-wave.png")
    assert 3 * 80 < strip.width < 3 * 80 + 200 and 2 * 80 < strip.height


def test_report_html_shows_every_image_with_its_scores_inside_the_folder(tmp_path):
    from pulid_flux.htmlreport import links

    rows = fake_rows(tmp_path, identity=[[0.40, 0.42, None, 0.43], [0.60, 0.61, 0.62, 0.61], [0.62, 0.63, 0.62, 0.63]],
                     clip=[0.31, 0.305, 0.26])
    texts = {"park-wave": "a person waving in a park", "studio-headshot": "a studio headshot"}
    result = write_sweep_outputs(tmp_path, rows, CHECKPOINTS, info=info(tiny=True, prompt_texts=texts), delta=0.02,
                                 epsilon=0.01)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert result.paths["html"] == tmp_path / "report.html"
    assert "Recommended checkpoint: id_000000500.safetensors" in page and "NOT real results" in page
    # Every image of the sweep is a tile; the chosen column is marked; no-face tiles are marked.
    sources = [link for link in links(page) if link.startswith("gallery/")]
    assert sorted(set(sources)) == sorted(r.file for r in rows)
    assert "500 (chosen)" in page and "no face" in page and "id 0.610" in page
    assert "a person waving in a park" in page
    # Every link is a relative file of the folder (strips, curve, CSV, report.md): nothing online.
    for link in links(page):
        assert "://" not in link and (tmp_path / link).is_file(), link
    assert "strips/park-wave.png" in page and "curve.png" in page


def test_no_faces_recommends_by_clip_and_says_so(tmp_path):
    rows = fake_rows(tmp_path, identity=[None, None, None], clip=[0.20, 0.25, 0.245])
    result = write_sweep_outputs(tmp_path, rows, CHECKPOINTS, info=info(tiny=True), delta=0.02, epsilon=0.01)
    report = (tmp_path / "report.md").read_text()
    assert result.recommendation.mode == "clip-only"
    assert "Recommended checkpoint: id_000000500.safetensors" in report
    assert "by CLIP score alone" in report and "NOT real results" in report


def test_style_outputs_have_the_style_columns(tmp_path):
    rows = []
    for strength, ident, style_score in ((0.0, 0.6, 0.1), (0.5, 0.59, 0.2), (1.0, 0.45, 0.3)):
        file = f"gallery/s{strength:g}/01_park-wave_s42.png"
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), (int(strength * 200), 0, 0)).save(tmp_path / file)
        rows.append(SweepRow(step="500", checkpoint="id_000000500.safetensors", prompt="park-wave", seed=42, file=file,
                             identity_arcface=ident, clip_score=0.3, face_found=True, style_lora="water.safetensors",
                             style_strength=strength, style_clip_score=style_score))
    order = [("0", "0"), ("0.5", "0.5"), ("1", "1")]
    style = {"lora": "water.safetensors", "prompt": "a watercolor painting", "checkpoint": "id_000000500.safetensors",
             "strengths": [0, 0.5, 1]}
    result = write_sweep_outputs(tmp_path, rows, order, info=info(style=style), delta=0.02, epsilon=0.01)
    assert result.recommendation.label == "0.5"
    with open(tmp_path / "sweep.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == COLUMNS + STYLE_COLUMNS
    report = (tmp_path / "report.md").read_text()
    assert "Recommended style strength: 0.5" in report
    assert "| 1 | 1 | 0% | 0.450 ± 0.000 |" in report and "| 0.750 |" in report   # retention 0.45 / 0.6


def test_the_ablation_spec_runs_the_chosen_checkpoint(tmp_path):
    from api_client.runner.sources.ablation.spec import load_spec

    source_path = ROOT / "workflows" / "ablation.yaml"
    source = yaml.safe_load(source_path.read_text())
    data = ablation_spec_data(source, source_path=source_path, checkpoint="id_000000500.safetensors",
                              lora_node="LoRA", lora_configs=["02_lora", "03_lora_pulid", "04_full"],
                              reference=[str(tmp_path / "me.jpg")])
    path = write_ablation_spec(tmp_path / "ablation_id_000000500.yaml", data, header=["made by a test"])
    spec = load_spec(path)
    assert [c.name for c in spec.configs] == ["01_base", "02_lora", "03_lora_pulid", "04_full"]
    for config in spec.configs[1:]:
        assert [(o.node, o.input, o.value) for o in config.overrides] == [("LoRA", "lora_name",
                                                                            "id_000000500.safetensors")]
    assert spec.configs[0].overrides == ()
    assert spec.reference == [tmp_path / "me.jpg"]
    assert path.read_text().startswith("# made by a test\n")


def test_scoring_real_photos_dlib_identity_clip_and_memorization(tmp_path, faces_dir):
    from pulid_flux.sweep.clip_score import load_clip_scorer, parse_clip_model
    from pulid_flux.sweep.scoring import (
        DLIB,
        SweepImage,
        dataset_features,
        load_identity_engines,
        score_images,
    )
    from pulid_flux.tiny import build_tiny_models
    from pulid_flux.tiny.open_clip_tiny import write_tiny_open_clip

    photos = faces_dir / "photos"
    plan = {"a": ["obama_02.jpg", "obama_03.jpg"], "b": ["biden_01.jpg", "hinton_01.jpg"]}
    images = []
    for checkpoint, names in plan.items():
        for seed, name in enumerate(names):
            file = f"gallery/{checkpoint}/{name}"
            (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(photos / name, tmp_path / file)
            images.append(SweepImage(step=checkpoint, checkpoint=checkpoint, prompt="portrait",
                                     prompt_text="photo of a man", seed=seed, file=file))
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for name in ("obama_03.jpg", "lecun_01.jpg"):
        shutil.copy(photos / name, dataset / name)
    models = tmp_path / "models"
    build_tiny_models(models, include=["insightface"])
    # The tiny insightface pack sees no face in a real photo: ArcFace is left empty, dlib takes over.
    engines = load_identity_engines([photos / "obama_01.jpg"], models_dir=models)
    assert engines.runs["identity_arcface"] is None and "cannot score" in engines.notes["identity_arcface"]
    assert engines.identity_column == DLIB
    clip = load_clip_scorer(parse_clip_model(":".join(map(str, write_tiny_open_clip(tmp_path / "clip")))))
    calls = []
    rows = score_images(tmp_path, images, engines=engines, clip=clip, dataset=dataset_features(clip, dataset),
                        progress=lambda *a: calls.append(a))
    assert calls == [(i, 4, "score") for i in range(1, 5)]      # a live bar moves with every image
    by_file = {r.file.rsplit("/", 1)[1]: r for r in rows}
    assert all(r.face_found and r.identity_arcface is None for r in rows)
    assert min(by_file["obama_02.jpg"].identity_dlib, by_file["obama_03.jpg"].identity_dlib) > \
        max(by_file["biden_01.jpg"].identity_dlib, by_file["hinton_01.jpg"].identity_dlib)
    assert by_file["obama_03.jpg"].memorization == pytest.approx(1.0, abs=1e-5)
    assert by_file["biden_01.jpg"].memorization < 0.9999
    assert len({r.clip_score for r in rows}) == 4
