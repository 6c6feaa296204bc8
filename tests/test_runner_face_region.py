"""The client's face region for the reference: the spec key ``reference_region`` (or a sidecar beside
the reference photo) becomes Encode identity's ``face_region`` value in every job that has the node,
tied to the photo by its content hash, and picks the face of the scoring reference."""

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from api_client.runner.errors import RunnerError
from api_client.runner.plan import RunInfo
from api_client.runner.reporting import scoring
from api_client.runner.sources import RunRequest
from api_client.runner.sources.ablation.source import build_plan
from api_client.runner.sources.ablation.spec import SpecError, load_spec
from pulid_flux.face.region import encode_mask_png, parse_region_list, sidecar_path
from pulid_flux.images import content_hash, load_rgb

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((ROOT / "workflows" / "ablation.yaml").read_text())
BOX = [40, 30, 120, 150]


def write_spec(folder: Path, **changes) -> Path:
    spec = {**SHIPPED, "workflows_dir": str(ROOT / "workflows"), **changes}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "me.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(path)
    return path


def plan(spec, out, references=()):
    args = argparse.Namespace(spec=str(spec), max_prompts=None, seeds=None, configs=None, sweep=[], no_sweeps=False,
                              overrides=[])
    return build_plan(args, RunRequest(out=Path(out), references=tuple(references)))


def encode_inputs(job):
    (node,) = [n for n in job.graph.values() if n["class_type"] == "PulidStudioEncodeIdentity"]
    return node["inputs"]


def test_spec_region_goes_to_every_encode_identity_with_the_photo_hash(tmp_path, photo):
    mask = np.zeros((150, 200), bool)
    mask[10:90, 20:100] = True
    (tmp_path / "mask.png").write_bytes(encode_mask_png(mask))
    spec = write_spec(tmp_path, reference="me.png", reference_region={"box": BOX, "mask": "mask.png"})
    assert load_spec(spec).reference_region.box == tuple(BOX)
    result = plan(spec, tmp_path / "out")
    with_node = [j for j in result.jobs if j.config in ("03_lora_pulid", "04_full")]
    assert with_node and len(with_node) < len(result.jobs)        # 01/02 have no Encode identity node
    (region,) = parse_region_list(encode_inputs(with_node[0])["face_region"])
    assert region.box == tuple(BOX) and region.image_hash == content_hash(load_rgb(photo))
    np.testing.assert_array_equal(region.mask, mask)
    assert {encode_inputs(j)["face_region"] for j in with_node} == {encode_inputs(with_node[0])["face_region"]}
    assert result.info.to_json()["reference_region"]["box"] == BOX     # run.json keeps it for `report`


def test_a_sidecar_beside_the_reference_is_used_and_the_spec_region_only_for_its_own_photo(tmp_path, photo, caplog):
    other = tmp_path / "other.jpg"
    Image.fromarray(np.full((300, 400, 3), 90, np.uint8)).save(other)
    sidecar_path(other).write_text(json.dumps({"box": [5, 6, 70, 80]}))
    spec = write_spec(tmp_path, reference="me.png", reference_region={"box": BOX})
    with caplog.at_level(logging.WARNING):
        result = plan(spec, tmp_path / "out", [other])
    job = next(j for j in result.jobs if j.config == "03_lora_pulid")
    (region,) = parse_region_list(encode_inputs(job)["face_region"])
    assert region.box == (5, 6, 70, 80) and region.image_hash == content_hash(load_rgb(other))
    assert "the spec's reference_region is for its own reference photo" in caplog.text
    # No region anywhere: the workflow's own value ("") stays.
    plain = plan(write_spec(tmp_path, reference="me.png"), tmp_path / "out2")
    assert encode_inputs(next(j for j in plain.jobs if j.config == "03_lora_pulid"))["face_region"] == ""
    assert plain.info.reference_region is None


@pytest.mark.parametrize("changes, expected", [
    ({"reference_region": {"box": BOX}}, "reference_region: needs 'reference'"),
    ({"reference": "me.png", "reference_region": {"bbox": BOX}}, "reference_region: reference_region: unknown key"),
    ({"reference": "me.png", "reference_region": {"box": [1, 2, 3]}}, "list of 4 numbers"),
    ({"reference": "me.png", "reference_region": {"box": BOX, "mask": "gone.png"}}, "gone.png does not exist"),
    ({"reference": "me.png", "reference_region": "missing.face.json"}, "cannot read the face region file"),
])
def test_bad_reference_regions_name_the_spec_and_the_key(tmp_path, photo, changes, expected):
    with pytest.raises(SpecError, match=expected.replace("(", r"\(")) as info:
        load_spec(write_spec(tmp_path, **changes))
    assert str(info.value).startswith(str(tmp_path / "spec.yaml"))


def test_a_box_off_the_photo_stops_the_run_before_any_job(tmp_path, photo):
    spec = write_spec(tmp_path, reference="me.png", reference_region={"box": [390, 290, 100, 100]})
    with pytest.raises(RunnerError, match=r"lies outside the 400x300 photo"):
        plan(spec, tmp_path / "out")


def test_the_report_scores_against_the_spec_region(tmp_path, faces_dir, monkeypatch):
    """make_report hands run.json's reference_region to the scorer (here captured, not run)."""
    group = tmp_path / "group.jpg"
    shutil.copyfile(faces_dir / "photos" / "group_two_people.jpg", group)
    captured = {}

    def fake_score(out, **kwargs):
        captured.update(kwargs)
        raise RuntimeError("captured")

    monkeypatch.setattr(scoring, "score", fake_score)
    info = RunInfo.from_json(json.loads(json.dumps(RunInfo(source="ablation", spec="s", spec_name="s",
                                                           reference=(str(group),),
                                                           reference_region={"box": BOX}).to_json())))
    with pytest.raises(RunnerError, match="captured"):
        scoring.make_report(tmp_path, info=info, engines=["dlib"], models_dir=None, records=[],
                            reference=[group], force=True, total_jobs=None)
    assert captured["regions"][str(group)].box == tuple(BOX)
    captured.clear()
    with pytest.raises(RunnerError):          # another reference (report --reference): not applied
        scoring.make_report(tmp_path, info=info, engines=["dlib"], models_dir=None, records=[],
                            reference=[tmp_path / "else.jpg"], force=True, total_jobs=None)
    assert captured["regions"] == {}


def test_gallery_scoring_uses_the_region_to_pick_the_reference_person(tmp_path, faces_dir):
    """report.score with a region on each person of the group photo: that person's photo wins."""
    pytest.importorskip("dlib")
    from api_client.runner.reporting.report import score
    from pulid_flux.face import load_engine
    from pulid_flux.face.region import FaceRegion

    photos = faces_dir / "photos"
    gallery = tmp_path / "gallery" / "cfg"
    gallery.mkdir(parents=True)
    shutil.copyfile(photos / "obama_03.jpg", gallery / "01_obama_s1.jpg")
    shutil.copyfile(photos / "biden_01.jpg", gallery / "02_biden_s1.jpg")
    group = photos / "group_two_people.jpg"
    engine = load_engine("dlib")
    obama_ref = engine.detect(load_rgb(photos / "obama_01.jpg"))[0].normed_embedding
    winners = set()
    for face in engine.detect(load_rgb(group)):
        x0, y0, x1, y1 = (float(v) for v in face.bbox)
        region = FaceRegion((x0 - 10, y0 - 20, x1 - x0 + 20, y1 - y0 + 30))
        result = score(tmp_path, reference=[group], engines=["dlib"], models_dir=None, configs=["cfg"],
                       regions={str(group): region})
        sims = {im.file: im.primary.similarity for im in result.images["cfg"]}
        winner = max(sims, key=sims.get)
        is_obama = float(face.normed_embedding @ obama_ref) > 0.93
        assert winner == ("01_obama_s1.jpg" if is_obama else "02_biden_s1.jpg"), sims
        winners.add(winner)
    assert winners == {"01_obama_s1.jpg", "02_biden_s1.jpg"}


def test_an_override_sets_the_region_as_a_string():
    """What docs/face_region.md shows for API users: --set 'Encode identity.face_region=[...]'."""
    from api_client.overrides import apply_overrides

    twin = json.loads((ROOT / "workflows" / "03_lora_pulid_api.json").read_text())
    text = '[{"box": [412, 160, 230, 290]}]'
    prompt = apply_overrides(twin, [f"Encode identity.face_region={text}"])
    value = next(n for n in prompt.values() if n["class_type"] == "PulidStudioEncodeIdentity")["inputs"]["face_region"]
    assert value == text and parse_region_list(value)[0].box == (412, 160, 230, 290)
