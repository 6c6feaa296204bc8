"""Captions that carry the subject's place in the frame, the other people, the head angle and the
framing (geometry and real photos with dlib), and ``--others crop|keep|reject``."""

import json

import numpy as np
import pytest
from PIL import Image

from pulid_flux.dataset.scene import (SceneFacts, angle_phrase, describe_scene, frame_position, geometric_caption,
                                      others_phrase)

TRIGGER = "ohwx man"


def test_frame_thirds():
    assert [frame_position(x, 300) for x in (0, 99.9, 100.1, 150, 199.9, 200.1, 299)] == [
        "left", "left", "center", "center", "center", "right", "right"]
    with pytest.raises(ValueError, match="positive"):
        frame_position(1, 0)


def test_scene_from_boxes_counts_only_people_inside_the_frame():
    facts = describe_scene([900, 100, 1000, 220], [[50, 100, 150, 220], [450, 90, 560, 210], [1500, 0, 1600, 90]],
                           frame=(0, 0, 1200, 800), framing="medium shot")
    assert facts.position == "right" and facts.others == ["left", "center"]       # the third is outside
    assert geometric_caption(TRIGGER, facts, " photo, ") == (
        "ohwx man, on the right, with two other people, on the left and in the center, medium shot, photo")


def test_caption_parts():
    assert others_phrase([]) == "" and others_phrase(["left"]) == "with one other person on the left"
    assert others_phrase(["right", "right", "right"]) == "with three other people, on the right"
    assert angle_phrase(None) == "" and angle_phrase(5) == "frontal view"
    assert angle_phrase(-40) == "three-quarter view facing left"
    assert angle_phrase(80, -25) == "profile facing right, looking down"
    facts = SceneFacts(position="center", yaw=35.0, pitch=0.0, framing="portrait")
    assert geometric_caption(TRIGGER, facts) == "ohwx man, in the center, three-quarter view facing right, portrait"
    with pytest.raises(ValueError, match="comma"):
        geometric_caption("ohwx, man", facts)


# ------------------------------------------------------------------------------------ real photos


@pytest.fixture(scope="module")
def engine(dlib_engine):
    return dlib_engine


def _prepare(tmp_path, photos: dict, engine, **options):
    """prepare_dataset on ``photos`` (name -> RGB array or source path); returns the report items by file."""
    from pulid_flux.dataset import PrepareOptions, prepare_dataset

    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    for name, value in photos.items():
        if isinstance(value, np.ndarray):
            Image.fromarray(value).save(src / name)
        else:
            (src / name).write_bytes(value.read_bytes())
    references = options.pop("references", ())
    result = prepare_dataset(src, tmp_path / "out", TRIGGER, engine, references=references,
                             options=PrepareOptions(**options))
    return {i["file"]: i for i in result.report["items"]}, result


def _placed(photo: np.ndarray, center_x: int, width: int = 2048, height: int = 1024) -> np.ndarray:
    """``photo`` scaled to 900 px high on a textured 2:1 canvas, its middle at ``center_x`` (texture, not a
    flat tone: flat borders would be trimmed before hashing and make the three pictures duplicates)."""
    scale = 900 / photo.shape[0]
    small = np.asarray(Image.fromarray(photo).resize((round(photo.shape[1] * scale), 900), Image.Resampling.LANCZOS))
    canvas = np.random.default_rng(center_x).integers(90, 170, (height, width, 3), dtype=np.uint8)
    x0 = max(0, min(width - small.shape[1], center_x - small.shape[1] // 2))
    canvas[60:960, x0:x0 + small.shape[1]] = small
    return canvas


def test_captions_state_left_center_right_for_faces_placed_at_known_positions(tmp_path, engine, faces_dir):
    from pulid_flux.images import load_rgb

    photo = load_rgb(faces_dir / "photos" / "obama_01.jpg")
    places = {"left": 330, "center": 1024, "right": 1718}
    items, _ = _prepare(tmp_path, {f"{where}.png": _placed(photo, x) for where, x in places.items()}, engine,
                        others="keep", references=[faces_dir / "photos" / "obama_02.jpg"])
    for where in places:
        item = items[f"{where}.png"]
        assert item["status"] == "accepted", item
        fx = (item["face_box"][0] + item["face_box"][2]) / 2
        assert {"left": fx < 683, "center": 683 < fx < 1365, "right": fx > 1365}[where]   # the face is where placed
        assert item["scene"]["position"] == where
        expected = {"left": "on the left", "center": "in the center", "right": "on the right"}[where]
        assert item["caption"].startswith(f"{TRIGGER}, {expected}, "), item["caption"]
        assert "other" not in item["caption"]


@pytest.mark.parametrize("reference, side, other", [("obama_01.jpg", "on the left", "on the right"),
                                                    ("biden_02.jpg", "on the right", "on the left")])
def test_others_keep_names_the_subjects_side_and_one_other_person(tmp_path, engine, faces_dir, reference, side,
                                                                    other):
    photos = faces_dir / "photos"
    items, result = _prepare(tmp_path, {"group.jpg": photos / "group_two_people.jpg"}, engine, others="keep",
                             references=[photos / reference])
    item = items["group.jpg"]
    assert item["status"] == "accepted" and item["blurred_faces"] == []
    assert item["crop_box"][2] - item["crop_box"][0] > 0.95 * item["image_size"][0]   # the whole photo stays
    assert item["caption"].startswith(f"{TRIGGER}, {side}, with one other person {other}, "), item["caption"]
    written = (result.output_dir / item["caption_file"]).read_text().strip()
    assert written == item["caption"]


@pytest.mark.parametrize("others", ["crop", "reject"])
def test_others_crop_and_reject_turn_the_two_person_photo_away(tmp_path, engine, faces_dir, others):
    photos = faces_dir / "photos"
    items, _ = _prepare(tmp_path, {"group.jpg": photos / "group_two_people.jpg", "solo.jpg": photos / "obama_04.jpg"},
                        engine, others=others, references=[photos / "obama_01.jpg"])
    assert items["group.jpg"]["status"] == "rejected" and items["group.jpg"]["reason"] == "multiple_faces"
    assert others in items["group.jpg"]["detail"] or "as prominent" in items["group.jpg"]["detail"]
    assert items["solo.jpg"]["status"] == "accepted"


def test_others_option_is_checked():
    from pulid_flux.dataset import PrepareOptions
    from pulid_flux.dataset.cli import OTHERS_CHOICES
    from pulid_flux.dataset.options import OTHERS_CHOICES as LIBRARY_CHOICES

    assert OTHERS_CHOICES == LIBRARY_CHOICES
    with pytest.raises(ValueError, match="others must be one of crop, keep, reject"):
        PrepareOptions(others="blur")


def test_report_records_the_scene(tmp_path, engine, faces_dir):
    items, result = _prepare(tmp_path, {"a.jpg": faces_dir / "photos" / "obama_04.jpg"}, engine)
    report = json.loads(result.report_path.read_text())
    scene = report["items"][0]["scene"]
    assert set(scene) == {"position", "others", "yaw", "pitch", "framing", "angle"}
    assert scene["framing"] == report["items"][0]["shot"] and scene["angle"] == "frontal"
    assert report["summary"]["vlm_captions"] == 0
