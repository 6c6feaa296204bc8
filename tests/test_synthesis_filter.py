"""The synthesis library without ComfyUI: view plans, the head-view pose bank, and the identity-and-pose
filter, grounding check and set assembly on real photos (dlib) standing in for generated candidates."""

import csv
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from pulid_flux.face.headpose import head_angle_name
from pulid_flux.pose import render_pose
from pulid_flux.pose.head_view import head_view_pose
from pulid_flux.pose.keypoints import BODY, L_EAR, L_EYE, NOSE, R_EAR, R_EYE
from pulid_flux.synthesis import (KEPT, REJECTED, UNVERIFIED, Candidate, FilterSettings, GroundingImage, View,
                                  ViewPlanError, check_not_subject, class_phrase, default_view_plan,
                                  filter_candidates, finish_set, grounding_plan, judge_candidates, parse_view_plan,
                                  plan_candidates, portrait_subject, write_grounding_images, write_training_images)
from pulid_flux.synthesis.grounding import without_trigger

TRIGGER = "ohwx man"


# ------------------------------------------------------------------------------------ view plan


def test_default_plan_covers_the_head_from_profile_to_profile():
    views = default_view_plan()
    assert len({v.name for v in views}) == len(views)
    portrait_yaws = sorted(v.yaw for v in views if v.distance == "portrait" and v.pitch == 0 and "neutral" in v.expression)
    assert portrait_yaws == [-90, -60, -30, 0, 30, 60, 90]
    assert {v.distance for v in views} == {"close-up", "portrait", "medium", "full body"}
    assert {v.angle for v in views} == {"frontal", "three-quarter", "profile"}
    assert any(v.pitch > 0 for v in views) and any(v.pitch < 0 for v in views)
    assert len({v.expression for v in views}) > 3 and len({v.lighting for v in views}) > 3
    assert views[0].prompt("a man").startswith("photo of a man, portrait, facing the camera, neutral expression")
    assert "profile view facing left" in next(v for v in views if v.yaw == -90).prompt("a man")


def test_plan_file_is_validated():
    views = parse_view_plan({"defaults": {"lighting": "flat light"},
                             "views": [{"yaw": 45, "distance": "close-up"}, {"name": "back", "yaw": -45, "pitch": 10}]})
    assert [v.name for v in views] == ["y+45_p+0_closeup", "back"] and views[0].lighting == "flat light"
    with pytest.raises(ViewPlanError, match=r"views\[0\]: distance must be one of"):
        parse_view_plan({"views": [{"distance": "far"}]})
    with pytest.raises(ViewPlanError, match=r"views\[1\]: unknown key\(s\) yaww"):
        parse_view_plan({"views": [{"yaw": 0}, {"yaww": 3}]})
    with pytest.raises(ViewPlanError, match="two views are named 'a'"):
        parse_view_plan({"views": [{"name": "a"}, {"name": "a", "yaw": 10}]})
    with pytest.raises(ViewPlanError, match="yaw must be a number"):
        parse_view_plan({"views": [{"yaw": "left"}]})


# ------------------------------------------------------------------------------------ head-view bank


def _head(frame):
    body = np.array(frame["people"][0][BODY]).reshape(18, 3)
    return body


@pytest.mark.parametrize("yaw", [-90, -45, 0, 45, 90])
def test_head_view_pose_turns_the_openpose_head(yaw):
    body = _head(head_view_pose("portrait", 768, 1024, yaw=yaw))
    eyes_mid = (body[R_EYE, 0] + body[L_EYE, 0]) / 2 if body[R_EYE, 2] and body[L_EYE, 2] else None
    if yaw == 0:
        assert body[[R_EAR, L_EAR, R_EYE, L_EYE], 2].all() and abs(body[NOSE, 0] - eyes_mid) < 1e-6
    if abs(yaw) >= 45:
        far_ear = L_EAR if yaw > 0 else R_EAR                # turning right hides the image-right ear
        assert body[far_ear, 2] == 0 and body[R_EAR if yaw > 0 else L_EAR, 2] == 1
    if abs(yaw) == 90:
        far_eye = L_EYE if yaw > 0 else R_EYE
        assert body[far_eye, 2] == 0
    near_eye = R_EYE if yaw > 0 else L_EYE
    if yaw:
        assert np.sign(body[NOSE, 0] - body[near_eye, 0]) == np.sign(yaw)    # the nose leads the turn
    assert render_pose(head_view_pose("portrait", 768, 1024, yaw=yaw)).shape == (1024, 768, 3)


def test_head_view_pose_pitch_and_errors():
    up, level = _head(head_view_pose("headshot", 512, 512, pitch=25)), _head(head_view_pose("headshot", 512, 512))
    assert up[NOSE, 1] < level[NOSE, 1]
    with pytest.raises(ValueError, match="unknown framing 'wide'"):
        head_view_pose("wide", 512, 512)
    with pytest.raises(ValueError, match="pitch must be within"):
        head_view_pose("portrait", 512, 512, pitch=95)


# ------------------------------------------------------------------------------------ filter on real photos


@pytest.fixture(scope="module")
def engine(dlib_engine):
    return dlib_engine


@pytest.fixture(scope="module")
def photos(faces_dir):
    from pulid_flux.images import load_rgb

    return lambda name: load_rgb(faces_dir / "photos" / name)


@pytest.fixture(scope="module")
def subject(engine, photos):
    return portrait_subject(photos("obama_01.jpg"), engine, name="obama_01.jpg", required=True)


FRONT = View("front", yaw=0.0)
RIGHT_3Q = View("right_3q", yaw=45.0)
LEFT_PROFILE = View("left_profile", yaw=-90.0)


def _candidate(name, view, seed, image):
    return Candidate(name=name, view=view, seed=seed, image=image)


def test_filter_keeps_the_subject_and_rejects_others(engine, photos, subject):
    noise = np.random.default_rng(1).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    candidates = [
        _candidate("obama_05", FRONT, 1, photos("obama_05_1080p.jpg")),
        _candidate("biden", FRONT, 2, photos("biden_02.jpg")),
        _candidate("hinton", FRONT, 3, photos("hinton_01.jpg")),
        _candidate("obama_06", FRONT, 4, photos("obama_06_240p.jpg")),     # the same photo as obama_05, smaller
        _candidate("obama_04", FRONT, 5, photos("obama_04.jpg")),
        _candidate("obama_02", RIGHT_3Q, 1, photos("obama_02.jpg")),       # turned the other way
        _candidate("noise_front", FRONT, 6, noise),
        _candidate("noise_profile", LEFT_PROFILE, 1, noise),
    ]
    filter_candidates(candidates, engine, subject, FilterSettings(per_view=1))
    by = {c.name: c for c in candidates}
    assert by["biden"].reason == by["hinton"].reason == "not_subject"
    assert by["biden"].similarity < by["biden"].threshold == 0.92
    assert by["obama_02"].reason == "pose_mismatch" and by["obama_02"].similarity >= 0.90
    assert by["noise_front"].reason == "no_face"
    assert by["noise_profile"].reason == "unverifiable" and "insightface" in by["noise_profile"].detail
    subject_front = [by[n] for n in ("obama_05", "obama_06", "obama_04")]
    assert all(c.similarity >= 0.92 and abs(c.pose.yaw) < 15 for c in subject_front)
    # K = 1 for the frontal view: the most similar is kept; its small copy is a duplicate, the third surplus.
    assert [c.status for c in subject_front].count(KEPT) == 1
    assert {c.reason for c in subject_front if c.status == REJECTED} <= {"duplicate", "surplus"}
    assert "duplicate" in {by["obama_05"].reason, by["obama_06"].reason} or by["obama_04"].reason == "duplicate"
    kept = next(c for c in subject_front if c.status == KEPT)
    assert kept.similarity == max(c.similarity for c in subject_front if c.reason != "duplicate")


def test_filter_thresholds_are_lower_for_turned_views(engine, photos, subject):
    turned = View("turned", yaw=-15.0)
    c = _candidate("obama_02", turned, 1, photos("obama_02.jpg"))
    filter_candidates([c], engine, subject, FilterSettings())
    assert c.status == KEPT and c.pose.yaw < 0
    three_quarter = _candidate("x", View("q", yaw=-40.0), 1, photos("obama_02.jpg"))
    filter_candidates([three_quarter], engine, subject, FilterSettings())
    assert three_quarter.threshold == 0.90 < c.threshold == 0.92
    assert head_angle_name(-40.0) == "three-quarter"


# ------------------------------------------------------------------------------------ grounding


def test_grounding_prompts_replace_the_trigger():
    assert class_phrase("ohwx man") == "a man" and class_phrase("sks woman") == "a woman"
    assert class_phrase("zxq", "a person") == "a person"
    with pytest.raises(ValueError, match="--class-phrase"):
        class_phrase("zxq")
    plan = grounding_plan(["ohwx man, on the left, portrait", "ohwx man, in the center, close-up"], 3, TRIGGER,
                          "a man")
    assert [g.caption for g in plan] == ["a man, on the left, portrait", "a man, in the center, close-up",
                                         "a man, on the left, portrait"]
    assert plan[0].prompt == "photo of a man, on the left, portrait" and len({g.seed for g in plan}) == 3
    assert all(TRIGGER not in g.caption and TRIGGER not in g.prompt for g in plan)
    with pytest.raises(ValueError, match="does not contain the trigger"):
        without_trigger("a man, portrait", TRIGGER, "a man")


def test_no_grounding_image_scores_as_the_subject(engine, photos, subject):
    others = ["biden_02.jpg", "hinton_01.jpg", "lecun_01.jpg", "lifeifei_01.jpg", "alex_lacamoire_02.jpg",
              "lin_manuel_miranda_01.png", "biden_01.jpg"]
    for name in others:
        item = GroundingImage(name=name, prompt="", caption="a man", seed=0)
        assert check_not_subject(item, photos(name), engine, subject), (name, item.similarity)
        assert item.similarity < item.threshold == 0.92
    look_alike = GroundingImage(name="obama_04", prompt="", caption="a man", seed=0)
    assert not check_not_subject(look_alike, photos("obama_04.jpg"), engine, subject)
    assert look_alike.status == "dropped" and look_alike.similarity >= 0.92


# ------------------------------------------------------------------------------------ assembling a set


def _save(out, relative, image):
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def _check_report_html(out, candidates, *, passed: int, rejected: int) -> str:
    """report.html shows every candidate with its decision and links only files of OUT."""
    from pulid_flux.htmlreport import links

    page = (out / "report.html").read_text(encoding="utf-8")
    assert {c.path for c in candidates} <= set(links(page))
    assert page.count('class="tile pass"') == passed and page.count('class="tile fail"') >= rejected
    for link in links(page):
        assert "://" not in link and (out / link).is_file(), link
    return page


def test_assembled_set_from_real_photos(tmp_path, engine, photos, subject):
    out = tmp_path / "out"
    views = [FRONT, View("left_3q", yaw=-20.0)]
    candidates = plan_candidates(views, [1, 2])
    sources = {("front", 1): "obama_04.jpg", ("front", 2): "biden_02.jpg",
               ("left_3q", 1): "obama_02.jpg", ("left_3q", 2): "hinton_01.jpg"}
    for c in candidates:
        _save(out, c.path, photos(sources[(c.view.name, c.seed)]))
    settings = FilterSettings(per_view=1)
    judge_candidates(out, candidates, engine, subject, settings)
    written = write_training_images(out, candidates, TRIGGER, text="photo")
    grounding = grounding_plan([c.extra["caption"] for c in candidates if c.status == KEPT], 2, TRIGGER, "a man")
    for item, name in zip(grounding, ["lecun_01.jpg", "obama_05_1080p.jpg"]):
        item.path = f"grounding/{item.name}.png"
        _save(out, item.path, photos(name))
    written += write_grounding_images(out, grounding, engine, subject)
    summary = finish_set(out, trigger=TRIGGER, views=views, candidates=candidates, grounding=grounding,
                         engine_name=engine.name, settings=settings, written=written,
                         sample_prompts=["photo of ohwx man, close-up"])
    assert summary.kept == 2 and summary.unverified == 0 and summary.grounding == 1
    train = sorted(p.name for p in (out / "train").iterdir())
    assert train == ["front_s1.png", "front_s1.txt", "left_3q_s1.png", "left_3q_s1.txt"]
    caption = (out / "train" / "left_3q_s1.txt").read_text().strip()
    assert caption.startswith("ohwx man, in the center, ") and caption.endswith(", photo")
    assert sorted(p.name for p in (out / "reg").iterdir()) == ["reg_0001.png", "reg_0001.txt"]   # obama dropped
    assert TRIGGER not in (out / "reg" / "reg_0001.txt").read_text()
    config = yaml.safe_load((out / "ai-toolkit.yaml").read_text())
    datasets = config["config"]["process"][0]["datasets"]
    assert [d["folder_path"] for d in datasets] == [str((out / "train").resolve()), str((out / "reg").resolve())]
    assert "is_reg" not in datasets[0] and datasets[1]["is_reg"] is True
    assert config["config"]["process"][0]["save"]["save_every"] == 250
    assert config["config"]["process"][0]["sample"]["prompts"] == ["photo of ohwx man, close-up"]
    rows = list(csv.DictReader(open(out / "coverage.csv")))
    assert [(r["view"], r["kept"], r["tried"], r["not_subject"]) for r in rows] == [
        ("front", "1", "2", "1"), ("left_3q", "1", "2", "1")]
    report = (out / "report.md").read_text()
    assert "| front | +0 | +0 | portrait | 1 / 2 |" in report and "Unverified" not in report
    assert "None of them scores as the subject" in report and "1 look-alike(s) dropped" in report
    assert Image.open(out / "contact_sheet.jpg").size[1] == 2 * 190
    _check_report_html(out, candidates, passed=2 + 1, rejected=2 + 1)   # + grounding images
    record = json.loads((out / "synthesis.json").read_text())
    assert {c["status"] for c in record["candidates"]} == {KEPT, REJECTED}
    # A re-run replaces its own files; a stranger's file in train/ stops it.
    assert write_training_images(out, candidates, TRIGGER)
    (out / "train" / "mine.txt").write_text("x")
    from pulid_flux.errors import PulidError
    with pytest.raises(PulidError, match="did not write \\(mine.txt"):
        write_training_images(out, candidates, TRIGGER)


def test_unverified_set_writes_k_per_view_and_fakes_no_pass(tmp_path, engine, subject):
    out = tmp_path / "out"
    views = [FRONT, LEFT_PROFILE]
    candidates = plan_candidates(views, [1, 2, 3])
    rng = np.random.default_rng(0)
    for c in candidates:
        _save(out, c.path, rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    settings = FilterSettings(per_view=2, verify=False)
    judge_candidates(out, candidates, engine, subject, settings)
    assert all(c.filter_reason in ("no_face", "unverifiable") for c in candidates)
    assert [c.status for c in candidates].count(UNVERIFIED) == 4 and not any(c.status == KEPT for c in candidates)
    written = write_training_images(out, candidates, TRIGGER)
    summary = finish_set(out, trigger=TRIGGER, views=views, candidates=candidates, grounding=[],
                         engine_name=engine.name, settings=settings, written=written)
    assert summary.unverified == 4 and summary.kept == 0
    assert (out / "train" / "left_profile_s1.txt").read_text().startswith(
        "ohwx man, in the center, profile facing left, portrait")
    report = (out / "report.md").read_text()
    assert "Unverified run" in report and "0 kept" in report and "4 unverified" in report
    page = _check_report_html(out, candidates, passed=0, rejected=2)
    assert "Unverified run (--tiny)" in page
    rows = {r["view"]: r for r in csv.DictReader(open(out / "coverage.csv"))}
    assert rows["front"]["no_face"] == "3" and rows["left_profile"]["unverifiable"] == "3"
    record = json.loads((out / "synthesis.json").read_text())
    assert record["verified"] is False
    assert all(c["status"] != KEPT and c["filter_reason"] for c in record["candidates"])


def test_subject_from_several_references(engine, photos):
    from pulid_flux.errors import NoFaceError
    from pulid_flux.synthesis import references_subject

    noise = np.random.default_rng(3).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    subject = references_subject([("a", photos("obama_01.jpg")), ("b", photos("obama_04.jpg")), ("n", noise)],
                                 engine, required=False)
    assert subject.members == ["a", "b"] and subject.threshold == 0.92
    from pulid_flux.dataset.analysis import detect_faces
    assert subject.similarities(detect_faces(engine, photos("obama_02.jpg"), 1024))[0] > 0.92
    with pytest.raises(NoFaceError, match="n: no face found by dlib"):
        references_subject([("a", photos("obama_01.jpg")), ("n", noise)], engine, required=True)
    assert references_subject([("n", noise)], engine, required=False) is None
