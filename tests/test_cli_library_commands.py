"""`pulid-studio score` and `pulid-studio dataset prepare` reach the library commands."""

import csv
import json
import shutil
import subprocess
import sys

import pytest

from api_client import cli


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "api_client.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_help_lists_library_commands_without_importing_them(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "dataset" in out and "score" in out and "convert" in out


def test_score_command_end_to_end(tmp_path, faces_dir):
    photos = faces_dir / "photos"
    images = tmp_path / "images"
    images.mkdir()
    for name in ("obama_02.jpg", "biden_01.jpg"):
        shutil.copy(photos / name, images / name)
    out = tmp_path / "out"
    done = run_cli("score", "--reference", str(photos / "obama_01.jpg"), "--images", str(images),
                   "--engine", "dlib", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = {r["file"]: r for r in csv.DictReader(open(out / "scores.csv"))}
    assert set(rows) == {"obama_02.jpg", "biden_01.jpg"}
    assert float(rows["obama_02.jpg"]["similarity_dlib"]) > float(rows["biden_01.jpg"]["similarity_dlib"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dlib"]["count"] == 2 and summary["dlib"]["pass_rate"] == 0.5


def test_dataset_prepare_arguments_reach_the_library(tmp_path):
    empty = tmp_path / "photos"
    empty.mkdir()
    done = run_cli("dataset", "prepare", str(empty), str(tmp_path / "out"))
    assert done.returncode == 2 and "--trigger" in done.stderr      # argparse names the missing option
