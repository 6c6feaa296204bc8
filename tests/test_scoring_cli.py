"""``pulid-studio score``: files, columns and exit codes.

One end-to-end subprocess run scores composite images holding a real face (for dlib) and a
synthetic one (for the synthetic insightface pack) with both engines; the other cases run the same
``run(args)`` in-process."""

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pulid_flux.images import load_rgb
from pulid_flux.scoring import DLIB_THRESHOLD
from pulid_flux.scoring.cli import add_parser, configure_parser, run
from pulid_flux.scoring.stats import SUMMARY_KEYS
from pulid_flux.tiny import insightface_pack as synth

ROOT = Path(__file__).resolve().parents[1]


def composite(photo, context):
    """1280x640: the photo letterboxed on the left, a synthetic face in a seeded pattern on the right."""
    canvas = synth.paint_faces(1280, 640, [(15, 5)])          # detection scale 0.5: image x 960..1024
    blocks = np.random.default_rng(context).integers(0, 256, (40, 40, 2), dtype=np.uint8).repeat(16, 0).repeat(16, 1)
    right = canvas[:, 640:]
    background = ~(right == synth.FACE_RGB).all(-1)
    right[background, 1] = blocks[background, 0]
    right[background, 2] = np.maximum(blocks[background, 1], 128)
    canvas[:, :640] = synth.BACKGROUND_RGB
    if photo is not None:
        picture = Image.fromarray(load_rgb(photo))
        picture.thumbnail((640, 640))
        canvas[:picture.height, :picture.width] = np.asarray(picture)
    return canvas


def save(image, path):
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    synth.build_pack(models / "insightface" / "models" / "antelopev2")   # ComfyUI layout
    return models


def read_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_cli_subprocess_two_engines(faces_dir, models_dir, tmp_path):
    photos = faces_dir / "photos"
    images = tmp_path / "images"
    images.mkdir()
    ref = save(composite(photos / "obama_01.jpg", context=1), tmp_path / "ref.png")
    save(composite(photos / "obama_04.jpg", context=1), images / "a_obama.png")
    save(composite(photos / "lecun_01.jpg", context=2), images / "b_lecun.png")
    save(np.full((300, 400, 3), (90, 140, 200), np.uint8), images / "c_plain.png")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "api_client.cli", "score", "--reference", str(ref), "--images", str(images),
         "--engine", "dlib", "--engine", "insightface", "--out", str(out), "--models-dir", str(models_dir),
         "--device", "cpu", "--dlib-upsample", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "dlib" in proc.stdout and "insightface" in proc.stdout
    header, rows = read_csv(out / "scores.csv")
    assert header == ["file", "face_found", "n_faces", "similarity_dlib", "similarity_insightface", "face_px",
                      "n_faces_dlib", "face_px_dlib", "n_faces_insightface", "face_px_insightface", "error"]
    by_file = {r["file"]: r for r in rows}
    assert list(by_file) == ["a_obama.png", "b_lecun.png", "c_plain.png"]
    assert float(by_file["a_obama.png"]["similarity_dlib"]) > DLIB_THRESHOLD
    assert float(by_file["b_lecun.png"]["similarity_dlib"]) < DLIB_THRESHOLD
    assert float(by_file["a_obama.png"]["similarity_insightface"]) > 0.999    # the same synthetic face
    assert float(by_file["b_lecun.png"]["similarity_insightface"]) < 0.9
    plain = by_file["c_plain.png"]
    assert [plain[k] for k in ("face_found", "n_faces", "similarity_dlib", "similarity_insightface", "face_px")] \
        == ["0", "0", "", "", ""]
    # face_found / n_faces / face_px are the first engine's (dlib)
    assert by_file["a_obama.png"]["face_px"] == by_file["a_obama.png"]["face_px_dlib"]
    assert by_file["a_obama.png"]["n_faces_insightface"] == "1"
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == ["dlib", "insightface"]
    for key, threshold in (("dlib", DLIB_THRESHOLD), ("insightface", 0.3)):
        s = summary[key]
        assert tuple(s) == SUMMARY_KEYS and s["threshold"] == threshold
        values = [float(r[f"similarity_{key}"]) for r in rows if r[f"similarity_{key}"]]
        assert s["count"] == len(values) == 2
        assert s["mean"] == pytest.approx(sum(values) / 2, rel=1e-12)
        assert s["no_face_rate"] == 1 / 3
        assert s["pass_rate"] == sum(v >= threshold for v in values) / 3
    assert summary["dlib"]["pass_rate"] == 1 / 3
    assert (out / "run_info.json").is_file()


def parse(*argv):
    return configure_parser(argparse.ArgumentParser()).parse_args([str(a) for a in argv])


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    (folder / "images").mkdir()
    save(composite(None, context=1), folder / "ref.png")
    save(composite(None, context=1), folder / "images" / "same.png")
    save(composite(None, context=3), folder / "images" / "other.png")
    save(np.full((200, 200, 3), 128, np.uint8), folder / "images" / "plain.png")
    return folder


@pytest.mark.parametrize("threshold, expected", [("0.5", 0.5), ("insightface=0.95", 0.95), (None, 0.3)])
def test_cli_in_process_thresholds(models_dir, synthetic_folder, tmp_path, threshold, expected):
    argv = ["--reference", synthetic_folder / "ref.png", "--images", synthetic_folder / "images", "--engine",
            "insightface", "--out", tmp_path, "--models-dir", models_dir, "--device", "cpu"]
    assert run(parse(*argv, *(["--threshold", threshold] if threshold else []))) == 0
    header, rows = read_csv(tmp_path / "scores.csv")
    assert header == ["file", "face_found", "n_faces", "similarity_insightface", "face_px", "error"]
    summary = json.loads((tmp_path / "summary.json").read_text())["insightface"]
    values = [float(r["similarity_insightface"]) for r in rows if r["similarity_insightface"]]
    assert summary["threshold"] == expected
    assert summary["pass_rate"] == sum(v >= expected for v in values) / 3


def score_cli(capsys, *argv) -> tuple[int, str]:
    """``pulid-studio score ARGV``: (exit status, stderr)."""
    from api_client.cli import main

    capsys.readouterr()
    code = main(["score", *map(str, argv)])
    return code, capsys.readouterr().err


def test_cli_errors_are_one_line_with_exit_2(models_dir, synthetic_folder, tmp_path, capsys):
    common = ["--out", tmp_path, "--models-dir", models_dir, "--device", "cpu", "--engine", "insightface"]
    plain = synthetic_folder / "images" / "plain.png"
    cases = [
        (["--reference", plain, "--images", synthetic_folder / "images", *common],
         "plain.png: no face found in this reference photo"),
        (["--reference", plain, "--images", synthetic_folder / "images", "--engine", "facenet", "--out", tmp_path],
         "unknown scoring engine 'facenet'"),
        (["--reference", synthetic_folder / "ref.png", "--images", tmp_path / "empty_missing", *common],
         "empty_missing"),
        (["--reference", synthetic_folder / "ref.png", "--images", synthetic_folder / "images", "--out", tmp_path,
          "--insightface-root", tmp_path / "nowhere", "--engine", "insightface"],
         "no insightface model pack 'antelopev2' found"),
    ]
    for argv, expected in cases:
        code, err = score_cli(capsys, *argv)
        assert code == 2 and err.startswith("pulid-studio: error: ") and err.count("\n") == 1, err
        assert expected in err


def test_unreadable_images_are_skipped_with_a_warning_and_a_row(models_dir, synthetic_folder, tmp_path, capsys,
                                                                caplog):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("same.png", "other.png"):
        (images / name).write_bytes((synthetic_folder / "images" / name).read_bytes())
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    gallery = tmp_path / "gallery"
    (gallery / "cfg").mkdir(parents=True)
    (gallery / "cfg" / "01_a_s1.png").write_bytes((synthetic_folder / "images" / "same.png").read_bytes())
    (gallery / "cfg" / "02_b_s1.png").write_bytes(b"not an image")
    common = ["--reference", synthetic_folder / "ref.png", "--engine", "insightface", "--models-dir", models_dir,
              "--device", "cpu"]

    code, err = score_cli(capsys, "--images", images, "--out", tmp_path / "out", *common)
    assert code == 0, err
    assert "broken.png: skipped, not a readable image" in caplog.text
    header, rows = read_csv(tmp_path / "out" / "scores.csv")
    by_file = {r["file"]: r for r in rows}
    assert sorted(by_file) == ["broken.png", "other.png", "same.png"]
    assert by_file["broken.png"]["error"].startswith("unreadable: ")
    assert by_file["broken.png"]["similarity_insightface"] == "" and by_file["same.png"]["error"] == ""
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["insightface"]
    assert summary["count"] == 2 and summary["no_face_rate"] == 0.0      # the unreadable file is not scored
    assert json.loads((tmp_path / "out" / "run_info.json").read_text())["unreadable"] == ["broken.png"]

    code, err = score_cli(capsys, "--gallery", gallery, "--out", tmp_path / "gout", *common)
    assert code == 0, err
    header, rows = read_csv(tmp_path / "gout" / "eval" / "cfg.csv")
    assert [r["error"][:11] for r in rows] == ["", "unreadable:"]
    assert json.loads((tmp_path / "gout" / "run_info.json").read_text())["unreadable"] == ["cfg/02_b_s1.png"]

    (images / "same.png").unlink()
    (images / "other.png").unlink()
    code, err = score_cli(capsys, "--images", images, "--out", tmp_path / "out2", *common)
    assert code == 2 and "none of the 1 image(s) could be read (broken.png)" in err
    assert not (tmp_path / "out2").exists()


def test_add_parser_registers_the_score_subcommand():
    parser = argparse.ArgumentParser(prog="pulid-studio")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["score", "--reference", "a.png", "--images", "d", "--engine", "dlib", "--engine",
                              "insightface", "--out", "o", "--threshold", "0.4"])
    assert args.func is run and args.engine == ["dlib", "insightface"] and args.threshold == ["0.4"]
    assert args.pack == "antelopev2"


def test_cli_gallery_and_calibrate(models_dir, synthetic_folder, tmp_path):
    gallery = tmp_path / "gallery"
    for config, context in (("cfg_a", 1), ("cfg_b", 3)):
        (gallery / config).mkdir(parents=True)
        save(composite(None, context=context), gallery / config / "01_portrait_seed7.png")
        save(np.full((200, 200, 3), 128, np.uint8), gallery / config / "02_plain_seed7.png")
    common = ["--models-dir", models_dir, "--device", "cpu", "--engine", "insightface"]
    out = tmp_path / "out"
    assert run(parse("--reference", synthetic_folder / "ref.png", "--gallery", gallery, "--out", out, *common)) == 0
    for name in ("eval/cfg_a.csv", "eval/cfg_b.csv", "summary.csv", "summary.json", "grid.jpg", "grid_small.png",
                 "summary_plot.png", "run_info.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cfg_a"]["insightface"]["pass_rate"] == 0.5 and summary["cfg_a"]["insightface"]["max"] > 0.999
    assert summary["cfg_b"]["insightface"]["max"] < 0.9
    _, rows = read_csv(out / "eval" / "cfg_a.csv")
    assert [(r["prompt"], r["seed"]) for r in rows] == [("portrait", "7"), ("plain", "7")]

    # Calibration on named photos: <identity>_<NN>.png; the same pattern context is the same "person".
    photos = tmp_path / "photos"
    photos.mkdir()
    for identity, context in (("alice", 1), ("bob", 3), ("carol", 5)):
        for n in (1, 2):
            image = composite(None, context=context)
            image[:40, :40] = 40 * n                        # photos of one person differ, far from the face
            save(image, photos / f"{identity}_{n:02d}.png")
    calib_out = tmp_path / "calibration"
    assert run(parse("--calibrate", photos, "--out", calib_out, *common)) == 0
    result = json.loads((calib_out / "calibration.json").read_text())["insightface"]
    assert result["n_identities"] == 3 and result["same_person"]["n"] == 3 and result["different_people"]["n"] == 12
    assert result["separable"] and result["different_people"]["max"] < result["suggested_threshold"] \
        < result["same_person"]["min"]
