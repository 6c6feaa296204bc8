"""``dataset prepare`` end to end on the shared real photos with the dlib engine.

The input folder holds all 22 shared photos (9 of Obama, 11 of ten other people, 2 group photos)
plus four made here: a photo without a face, a corrupt file, a byte copy of obama_02.jpg, and
obama_04.jpg stored sideways with an EXIF orientation tag.

What the shared photos really are (checked by eye and by the embeddings): obama_05_1080p and
obama_06_240p are letterboxed copies of obama_01 at two resolutions, obama_07_small and the two
"partial" photos are crops of it, and in the partial ones the frame cuts the face (only ~80 % of
the face box is inside). So four distinct Obama photos are good training material, and that is
exactly what the run accepts; the rest are rejected for the reasons asserted below.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from api_client.cli import main as pulid_studio
from pulid_flux.dataset import SHOT_TYPES

ROOT = Path(__file__).resolve().parents[1]
TRIGGER = "ohwx man"
SUBJECT = "obama"
MADE_HERE = {"no_face_landscape.jpg": None, "broken.jpg": None, "obama_02_copy.jpg": "obama",
             "obama_04_exif.jpg": "obama"}


def cli_main(argv):
    """``pulid-studio dataset ARGV`` in-process."""
    return pulid_studio(["dataset", *argv])


def labels(faces_dir):
    return json.loads((faces_dir / "labels.json").read_text())["photos"]


def make_inputs(folder: Path, faces_dir: Path) -> None:
    folder.mkdir()
    for photo in labels(faces_dir):
        shutil.copy(faces_dir / "photos" / photo, folder / photo)
    rng = np.random.default_rng(0)
    # Smooth colour fields and stripes: texture without anything face-like.
    y, x = np.mgrid[0:900, 0:1400]
    scene = np.stack([120 + 80 * np.sin(x / 90.0), 140 + 60 * np.cos(y / 70.0), 90 + 40 * np.sin((x + y) / 50.0)], -1)
    scene += rng.normal(0, 6, scene.shape)
    Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8)).save(folder / "no_face_landscape.jpg", quality=92)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" + rng.bytes(2000))
    shutil.copy(folder / "obama_02.jpg", folder / "obama_02_copy.jpg")
    upright = Image.open(folder / "obama_04.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6            # orientation: rotate 90 degrees clockwise to display
    upright.transpose(Image.Transpose.ROTATE_90).save(folder / "obama_04_exif.jpg", quality=95, exif=exif)


@pytest.fixture(scope="module")
def run(tmp_path_factory, faces_dir):
    base = tmp_path_factory.mktemp("prepare")
    inputs, output = base / "photos", base / "out"
    make_inputs(inputs, faces_dir)
    start = time.perf_counter()
    code = cli_main(["prepare", str(inputs), str(output), "--trigger", TRIGGER, "--engine", "dlib"])
    seconds = time.perf_counter() - start
    report = json.loads((output / "report.json").read_text())
    return {"code": code, "seconds": seconds, "inputs": inputs, "output": output, "report": report,
            "items": {item["file"]: item for item in report["items"]}}


def identity_of(name, faces_dir):
    if name in MADE_HERE:
        return MADE_HERE[name]
    return labels(faces_dir)[name]["identity"]


def test_run_succeeds_in_time(run):
    assert run["code"] == 0
    # 26 inputs (the 22 shared photos + 4) including loading the dlib models; about 15-25 s here.
    assert run["seconds"] < 60, f"dataset prepare took {run['seconds']:.1f} s"
    assert set(run["items"]) == {p.name for p in run["inputs"].iterdir()}


def test_subject_is_the_dominant_identity(run, faces_dir):
    subject = run["report"]["subject"]
    assert subject["method"] == "auto" and subject["found"] and subject["engine"].startswith("dlib")
    members = set(subject["members"])
    singles = [name for name, info in labels(faces_dir).items() if info["faces"] == 1]
    # Every member photo contains Obama (his own photos, or a group photo he is in) ...
    for name in members:
        assert identity_of(name, faces_dir) == SUBJECT or SUBJECT in labels(faces_dir).get(name, {}).get("people", [])
    # ... and every single-person Obama photo is recognised as him.
    assert {n for n in singles if labels(faces_dir)[n]["identity"] == SUBJECT} <= members
    assert subject["runner_up_photos"] < subject["photos"] and not subject["ambiguous"]


def test_every_accepted_photo_shows_the_subject(run, faces_dir):
    accepted = {name for name, item in run["items"].items() if item["status"] == "accepted"}
    assert accepted, "nothing accepted"
    for name in accepted:
        assert identity_of(name, faces_dir) == SUBJECT, name
        assert run["items"][name]["similarity"] >= run["report"]["subject"]["threshold"]
    # The four distinct Obama photos (see the module docstring), one of obama_04 and its EXIF twin.
    assert {n for n in accepted if n != "obama_04_exif.jpg"} - {"obama_04.jpg"} == {
        "obama_01.jpg", "obama_02.jpg", "obama_03.jpg"}
    assert len({"obama_04.jpg", "obama_04_exif.jpg"} & accepted) == 1


def test_other_people_are_not_the_subject(run, faces_dir):
    others = [n for n, info in labels(faces_dir).items() if info["faces"] == 1 and info["identity"] != SUBJECT]
    assert len(others) == 11
    for name in others:
        item = run["items"][name]
        assert (item["status"], item["reason"]) == ("rejected", "not_subject"), name
        assert item["similarity"] < run["report"]["subject"]["threshold"]
        assert item["output"] is None


def test_group_photos(run, faces_dir):
    groups = [n for n, info in labels(faces_dir).items() if info["kind"] == "group"]
    assert len(groups) == 2
    for name in groups:
        item = run["items"][name]
        # The subject is found in the group photo, but another face is as prominent.
        assert item["similarity"] >= run["report"]["subject"]["threshold"]
        if item["status"] == "rejected":
            assert item["reason"] == "multiple_faces", name
            assert "as prominent" in item["detail"]
        else:
            assert item["blurred_faces"] or item["avoided_faces"]


def test_rejected_subject_photos_have_the_right_reason(run):
    items = run["items"]
    # Letterboxed copy of obama_01 (same picture once the black bars are trimmed).
    assert (items["obama_05_1080p.jpg"]["reason"], items["obama_05_1080p.jpg"]["duplicate_of"]) == (
        "duplicate", "obama_01.jpg")
    # 427x240 and 320x240 photos: the crop would need 4x upscaling.
    for name in ("obama_06_240p.jpg", "obama_07_small.jpg"):
        assert items[name]["reason"] == "low_resolution", name
        assert min(items[name]["image_size"]) == 240
    # The frame cuts the face.
    for name in ("obama_08_partial.jpg", "obama_09_partial.jpg"):
        assert items[name]["reason"] == "face_too_small", name
        assert items[name]["face_size"]["inside"] < 0.9 and "cuts the face" in items[name]["detail"]


def test_no_face_unreadable_and_exact_duplicate(run):
    items = run["items"]
    assert (items["no_face_landscape.jpg"]["reason"], items["no_face_landscape.jpg"]["similarity"]) == ("no_face", None)
    assert items["broken.jpg"]["reason"] == "unreadable" and items["broken.jpg"]["image_size"] is None
    copy = items["obama_02_copy.jpg"]
    assert (copy["status"], copy["reason"], copy["duplicate_of"]) == ("rejected", "duplicate", "obama_02.jpg")
    assert "byte-identical" in copy["detail"]


def test_exif_orientation_is_applied(run):
    items = run["items"]
    turned, upright = items["obama_04_exif.jpg"], items["obama_04.jpg"]
    # Stored 832 wide and 1480 high; read upright, the face is found and it is the same picture.
    assert turned["image_size"] == upright["image_size"] == [1480, 832]
    assert turned["similarity"] > 0.95
    pair = sorted([turned, upright], key=lambda i: i["status"])
    assert pair[0]["status"] == "accepted" and pair[1]["reason"] == "duplicate"
    assert pair[1]["duplicate_of"] == pair[0]["file"]


def test_accepted_images_are_cropped_resized_and_captioned(run):
    output = run["output"]
    accepted = [i for i in run["report"]["items"] if i["status"] == "accepted"]
    for item in accepted:
        image_path, caption_path = output / item["output"], output / item["caption_file"]
        assert image_path.parent == caption_path.parent == output / "dataset"
        assert image_path.stem == caption_path.stem
        with Image.open(image_path) as im:
            width, height = im.size
        assert [width, height] == item["output_size"]
        assert 0.5 <= width / height <= 2.0
        assert min(width, height) >= 1024 and max(width, height) <= 2048
        assert width % 32 == 0 and height % 32 == 0
        x0, y0, x1, y1 = item["crop_box"]
        assert 0 <= x0 < x1 <= item["image_size"][0] and 0 <= y0 < y1 <= item["image_size"][1]
        # The crop has the output's aspect (no stretching) to within a pixel of rounding.
        assert abs((x1 - x0) / (y1 - y0) - width / height) < 2.0 / min(x1 - x0, y1 - y0) + 1e-3
        fx0, fy0, fx1, fy1 = item["face_box"]
        assert x0 <= fx0 and fx1 <= x1 and y0 <= fy0 and fy1 <= y1, "the subject's face is cut"
        caption = caption_path.read_text().strip()
        assert caption == item["caption"] and caption.startswith(TRIGGER + ", ")
        # trigger, position in the frame, [other people,] head angle, framing
        parts = caption.split(", ")
        assert parts[1] == {"left": "on the left", "center": "in the center", "right": "on the right"}[
            item["scene"]["position"]]
        assert parts[-1] == item["shot"] and item["shot"] in SHOT_TYPES and item["caption_source"] == "geometric"
    shots = {i["file"]: i["shot"] for i in accepted}
    assert shots.get("obama_03.jpg") == "full body" and shots.get("obama_01.jpg") == "medium shot"


def test_dataset_folder_holds_only_pairs(run):
    dataset = run["output"] / "dataset"
    files = sorted(dataset.iterdir())
    assert all(p.is_file() for p in files)
    images = {p.stem for p in files if p.suffix == ".jpg"}
    captions = {p.stem for p in files if p.suffix == ".txt"}
    assert images == captions and len(files) == 2 * len(images)
    assert len(images) == run["report"]["summary"]["accepted"]


def test_ai_toolkit_config(run):
    config = yaml.safe_load((run["output"] / "ai-toolkit.yaml").read_text())
    assert config["job"] == "extension"
    process = config["config"]["process"]
    assert len(process) == 1 and process[0]["type"] == "sd_trainer"
    p = process[0]
    assert p["network"] == {"type": "lora", "linear": 32, "linear_alpha": 32}
    train = p["train"]
    assert (train["optimizer"], train["lr"], train["steps"], train["batch_size"]) == ("adamw8bit", 1e-4, 2500, 2)
    assert isinstance(train["lr"], float)
    assert train["ema_config"] == {"use_ema": True, "ema_decay": 0.99}
    (dataset,) = p["datasets"]
    folder = Path(dataset["folder_path"])
    assert folder.is_absolute() and folder == (run["output"] / "dataset").resolve()
    assert (dataset["caption_ext"], dataset["resolution"]) == ("txt", [768, 1024])
    assert p["save"]["save_every"] == 250
    assert p["sample"]["prompts"] and all(TRIGGER in prompt for prompt in p["sample"]["prompts"])
    assert p["model"]["name_or_path"] == "black-forest-labs/FLUX.1-dev" and p["model"]["is_flux"] is True
    assert p["trigger_word"] == TRIGGER


def test_report_records_and_contact_sheet(run):
    report = run["report"]
    summary = report["summary"]
    assert summary["inputs"] == len(report["items"]) == 26
    assert summary["accepted"] + summary["rejected"] == summary["inputs"]
    assert sum(summary["reasons"].values()) == summary["rejected"]
    for item in report["items"]:
        assert item["status"] in ("accepted", "rejected")
        assert (item["reason"] is None) == (item["status"] == "accepted")
        assert item["similarity"] is None or isinstance(item["similarity"], float)
        assert (item["output"] is None) == (item["status"] == "rejected")
        if item["status"] == "accepted":
            assert item["face_size"]["px"] > 0 and item["crop_box"] and item["sharpness"] > 0
    page = (run["output"] / "report.html").read_text()
    for item in report["items"]:
        assert item["file"] in page
    # One thumbnail per readable photo (broken.jpg has none).
    assert page.count("<svg") == len(report["items"]) - 1
    assert page.count('class="card accepted"') == summary["accepted"]
    # and a sortable table, one row per input, the similarity sortable as a number
    table = page.split('<table class="sortable">')[1].split("</table>")[0]
    assert table.count("<tr>") == len(report["items"]) + 1 and "<th data-type=number>similarity</th>" in table
    assert "<script>" in page and "aria-sort" in page


def test_cli_subprocess_with_reference(tmp_path, faces_dir):
    """The exact command line, in a fresh interpreter: references choose the subject."""
    photos = faces_dir / "photos"
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("obama_02.jpg", "biden_02.jpg", "lecun_01.jpg"):
        shutil.copy(photos / name, inputs / name)
    output = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "api_client.cli", "dataset", "prepare", str(inputs), str(output),
                           "--trigger", TRIGGER, "--engine", "dlib", "--reference", str(photos / "obama_01.jpg")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((output / "report.json").read_text())
    assert report["subject"]["method"] == "reference"
    status = {i["file"]: (i["status"], i["reason"]) for i in report["items"]}
    assert status == {"obama_02.jpg": ("accepted", None), "biden_02.jpg": ("rejected", "not_subject"),
                      "lecun_01.jpg": ("rejected", "not_subject")}
    assert sorted(p.name for p in (output / "dataset").iterdir()) == ["obama_02.jpg", "obama_02.txt"]
    # Running again into the same folder replaces the previous run's files.
    assert cli_main(["prepare", str(inputs), str(output), "--trigger", "sks person",
                     "--reference", str(photos / "biden_01.jpg")]) == 0
    assert sorted(p.name for p in (output / "dataset").iterdir()) == ["biden_02.jpg", "biden_02.txt"]
    assert (output / "dataset" / "biden_02.txt").read_text().startswith("sks person, ")


def test_cli_errors_are_clear(tmp_path, faces_dir, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(faces_dir / "photos" / "obama_02.jpg", inputs / "a.jpg")
    no_face = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(no_face)
    cases = [
        (["prepare", str(inputs), str(tmp_path / "o1"), "--trigger", TRIGGER, "--reference", str(no_face)],
         "blank.png: no face found in this reference photo"),
        (["prepare", str(inputs), str(tmp_path / "o2"), "--trigger", TRIGGER, "--engine", "insightface",
          "--insightface-root", ""], "--insightface-root"),
        (["prepare", str(tmp_path / "missing"), str(tmp_path / "o3"), "--trigger", TRIGGER], "not a folder"),
        (["prepare", str(inputs), str(tmp_path / "o4")], "--trigger"),               # a required option
    ]
    for argv, expected in cases:
        try:
            code = cli_main(argv)
        except SystemExit as exc:                 # argparse exits; the commands return their status
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("pulid-studio: error: ") and err.count("\n") == 1, err
        assert expected in err
    # An error before any work creates no output folder.
    assert not any((tmp_path / f"o{n}").exists() for n in range(1, 5))


def test_nothing_accepted_still_reports(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(inputs / "noise.jpg")
    (inputs / "bad.png").write_bytes(b"garbage")
    output = tmp_path / "out"
    assert cli_main(["prepare", str(inputs), str(output), "--trigger", TRIGGER, "-q"]) == 1
    report = json.loads((output / "report.json").read_text())
    assert report["subject"]["found"] is False
    assert [(i["file"], i["reason"]) for i in report["items"]] == [("bad.png", "unreadable"), ("noise.jpg", "no_face")]
    assert list((output / "dataset").iterdir()) == []
