"""Finding a trainer's checkpoints in a folder, in step order."""

import json
import struct

import pytest

from pulid_flux.sweep.checkpoints import (
    CheckpointError,
    discover_checkpoints,
    read_metadata,
    step_from_metadata,
)


def write_safetensors(path, metadata=None):
    """A minimal valid safetensors file (one 1-element tensor) with the given metadata."""
    header = {"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    if metadata is not None:
        header["__metadata__"] = metadata
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0\0\0\0")
    return path


def test_aitoolkit_names_and_the_final_step_from_metadata(tmp_path):
    for step in (500, 250, 1000):
        write_safetensors(tmp_path / f"id_{step:09d}.safetensors")
    write_safetensors(tmp_path / "id.safetensors", {"format": "pt", "training_info": json.dumps({"step": 1250})})
    (tmp_path / "optimizer.pt").write_bytes(b"x")
    (tmp_path / "config.yaml").write_text("job: extension\n")
    found = discover_checkpoints(tmp_path)
    assert [c.file for c in found] == ["id_000000250.safetensors", "id_000000500.safetensors",
                                       "id_000001000.safetensors", "id.safetensors"]
    assert [c.step for c in found] == [250, 500, 1000, 1250]
    assert found[-1].final and found[-1].step_source == "metadata" and found[-1].label == "1250 (final)"
    assert [c.label for c in found[:3]] == ["250", "500", "1000"]
    assert found[0].tag == "id_000000250"


def test_final_without_step_metadata_is_labelled_final_and_last(tmp_path):
    write_safetensors(tmp_path / "id.safetensors", {"format": "pt"})
    write_safetensors(tmp_path / "id_000003000.safetensors")
    write_safetensors(tmp_path / "id_000000250.safetensors")
    found = discover_checkpoints(tmp_path)
    assert [c.label for c in found] == ["250", "3000", "final"]
    assert found[-1].step is None and found[-1].step_source == "none"


def test_final_metadata_step_sorts_before_later_step_files(tmp_path):
    # A final file whose metadata says 300 belongs between 250 and 500 (resumed trainings do this).
    write_safetensors(tmp_path / "id.safetensors", {"training_info": '{"step": 300}'})
    for step in (250, 500):
        write_safetensors(tmp_path / f"id_{step:09d}.safetensors")
    assert [c.label for c in discover_checkpoints(tmp_path)] == ["250", "300 (final)", "500"]


def test_other_trainers_with_a_step_pattern(tmp_path):
    for step in (10, 2, 30):
        write_safetensors(tmp_path / f"face-step{step:05d}.safetensors")
    write_safetensors(tmp_path / "face.safetensors", {"ss_steps": "40"})
    found = discover_checkpoints(tmp_path, step_pattern=r"(?P<name>.+)-step(?P<step>\d+)\.safetensors")
    assert [(c.file, c.step) for c in found] == [("face-step00002.safetensors", 2), ("face-step00010.safetensors", 10),
                                                ("face-step00030.safetensors", 30), ("face.safetensors", 40)]


def test_step_pattern_errors_are_specific(tmp_path):
    write_safetensors(tmp_path / "a_1.safetensors")
    write_safetensors(tmp_path / "a_2.safetensors")
    with pytest.raises(CheckpointError, match="no named group 'step'"):
        discover_checkpoints(tmp_path, step_pattern=r"(.+)_(\d+)\.safetensors")
    with pytest.raises(CheckpointError, match="not a valid regular expression"):
        discover_checkpoints(tmp_path, step_pattern=r"(?P<step>\d+")
    with pytest.raises(CheckpointError, match="matches the step pattern"):
        discover_checkpoints(tmp_path, step_pattern=r"x(?P<step>\d+)\.safetensors")


def test_two_trainings_need_a_name(tmp_path):
    for name in ("alice", "bob"):
        write_safetensors(tmp_path / f"{name}_000000100.safetensors")
    with pytest.raises(CheckpointError, match="2 trainings.*'alice'.*'bob'.*--name"):
        discover_checkpoints(tmp_path)
    assert [c.file for c in discover_checkpoints(tmp_path, name="bob")] == ["bob_000000100.safetensors"]
    with pytest.raises(CheckpointError, match="no checkpoint of a training named 'carol'"):
        discover_checkpoints(tmp_path, name="carol")


def test_a_single_file_is_one_final_checkpoint(tmp_path):
    write_safetensors(tmp_path / "my_lora.safetensors")
    found = discover_checkpoints(tmp_path)
    assert [(c.file, c.label) for c in found] == [("my_lora.safetensors", "final")]


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        discover_checkpoints(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="holds no .safetensors file"):
        discover_checkpoints(tmp_path)


def test_metadata_reading_tolerates_junk(tmp_path):
    assert read_metadata(tmp_path / "missing.safetensors") == {}
    (tmp_path / "short.safetensors").write_bytes(b"abc")
    assert read_metadata(tmp_path / "short.safetensors") == {}
    assert step_from_metadata({"training_info": "not json"}) is None
    assert step_from_metadata({"training_info": '{"step": true}'}) is None
    assert step_from_metadata({"ss_steps": "12"}) == 12


def test_the_tiny_lora_writer_is_discovered(tmp_path):
    from pulid_flux.tiny.lora import write_lora

    for name in ("id_000000250", "id_000000500", "id"):
        write_lora(tmp_path / f"{name}.safetensors")
    found = discover_checkpoints(tmp_path)
    assert [c.label for c in found] == ["250", "500", "final"]
