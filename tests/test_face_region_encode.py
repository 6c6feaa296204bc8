"""Face regions in identity encoding: the region replaces detection (real photos with dlib as the
detector, the synthetic 512-d recognizer, the golden tiny EVA and tiny PuLID), box-only alignment,
the mask (white outside it; an error when it hides the face), regions by content hash, the no-face
error, and the cache."""

import numpy as np
import pytest
import torch

from pulid_flux import NoFaceError, PulidFlux
from pulid_flux.errors import FaceRegionError
from pulid_flux.engine.eva import EvaVisionTower
from pulid_flux.face import align_ffhq, load_bisenet, load_engine
from pulid_flux.engine.encoder import ALIGNED_SIZE, EncodeCache, FaceModels, encode_identity, resize_long_side
from pulid_flux.face.region import FaceRegion, parse_region_list
from pulid_flux.face.region_locate import box_only_face
from pulid_flux.images import content_hash, load_rgb
from pulid_flux.tiny import insightface_pack as synth
from pulid_flux.tiny.bisenet import save_random_bisenet
from pulid_flux.tiny.pulid import pulid_state_dict

SAME_IDENTITY = 0.95


@pytest.fixture(scope="module")
def parts(tmp_path_factory, golden_dir):
    tmp = tmp_path_factory.mktemp("region_encode")
    synthetic = load_engine("insightface", pack_dir=synth.build_pack(tmp / "antelopev2", decoys=False), device="cpu")
    return {"synthetic": synthetic, "dlib": load_engine("dlib"),
            "parser": load_bisenet(save_random_bisenet(tmp / "parsing_bisenet.pth")),
            "eva": EvaVisionTower.from_file(golden_dir / "eva.safetensors"),
            "pulid": PulidFlux.from_state_dict(pulid_state_dict(), source="tiny_pulid.safetensors")}


def models(parts, detector="dlib"):
    return FaceModels(parts[detector], parts["synthetic"], parts["parser"], parts["eva"], parts["pulid"])


def cosine(a, b):
    a, b = a.flatten().double(), b.flatten().double()
    return float(a @ b / a.norm() / b.norm())


def test_a_box_gives_the_identity_detection_gives(parts, faces_dir):
    photo = load_rgb(faces_dir / "photos" / "obama_02.jpg")
    detected = encode_identity([photo], models(parts))
    x0, y0, x1, y1 = detected.images[0].bbox
    box = [x0 - 0.2 * (x1 - x0), y0 - 0.3 * (y1 - y0), 1.4 * (x1 - x0), 1.5 * (y1 - y0)]
    boxed = encode_identity([photo], models(parts), regions=parse_region_list(f'[{{"box": {box}}}]'))
    (status,) = boxed.images
    assert status.region == {"box": [round(v, 2) for v in box], "source": "face_region[0]", "mode": "redetected",
                             "rotation": 0, "mask": False}
    assert "face found again in the enlarged box" in status.message
    assert not any("box-only" in w for w in boxed.warnings)
    assert cosine(boxed.encodings[0].id_cond[:, :512], detected.encodings[0].id_cond[:, :512]) >= SAME_IDENTITY
    assert cosine(boxed.identity.tokens, detected.identity.tokens) >= SAME_IDENTITY


def test_a_face_missed_at_full_size_gets_an_identity_from_its_box(parts, faces_dir):
    """A real face shrunk into a large canvas: no face for detection, then the drawn box rescues it."""
    photo = load_rgb(faces_dir / "photos" / "obama_01.jpg")
    (face,) = parts["dlib"].detect(photo, embed=False)
    k = 44 / face.width
    import cv2
    small = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    canvas = np.full((1800, 2400, 3), 200, np.uint8)
    canvas[900:900 + small.shape[0], 1500:1500 + small.shape[1]] = small
    with pytest.raises(NoFaceError) as info:
        encode_identity([canvas], models(parts), names=["party.jpg"])
    message = str(info.value)
    assert "no face found in any reference image (party.jpg) by dlib:hog" in message
    assert "drag a box around the face" in message and "face_region" in message and ".face.json" in message
    assert [s.name for s in info.value.images] == ["party.jpg"]           # the canvas still gets the photo
    assert info.value.images[0].image_hash == content_hash(canvas)

    x0, y0, x1, y1 = face.bbox * k + (1500, 900, 1500, 900)
    region = FaceRegion((x0 - 8, y0 - 12, x1 - x0 + 16, y1 - y0 + 20), image_hash=content_hash(canvas))
    result = encode_identity([canvas], models(parts), names=["party.jpg"], regions=[region])
    (status,) = result.images
    assert status.face_found and status.region["mode"] == "redetected"
    np.testing.assert_allclose(status.bbox, [x0, y0, x1, y1], atol=0.25 * (x1 - x0))


def test_box_only_alignment_when_the_engine_finds_nothing(parts):
    """The synthetic detector never sees a real-looking face: the box alone aligns it, with a warning."""
    image = np.random.default_rng(3).integers(0, 120, (700, 900, 3), dtype=np.uint8)
    region = FaceRegion((300, 200, 180, 240), source="face_region[0]")
    result = encode_identity([image], models(parts, "synthetic"), names=["painting.png"], regions=[region])
    (status,) = result.images
    assert status.face_found and status.region["mode"] == "box-only" and not status.fallback_used
    assert result.warnings == ["painting.png: no face found in the drawn box by insightface:antelopev2; box-only "
                               "alignment used, identity quality may drop"]
    kps = box_only_face(region).kps
    np.testing.assert_array_equal(result.encodings[0].aligned, align_ffhq(image, kps, ALIGNED_SIZE)[0])


def test_the_mask_whitens_the_rest_and_must_leave_the_face_visible(parts):
    image = np.random.default_rng(4).integers(0, 120, (600, 800, 3), dtype=np.uint8)
    box = (300, 150, 200, 260)
    left_half = np.zeros((600, 800), bool)
    left_half[:, :400] = True                     # the face's left half (box centre x = 400)
    result = encode_identity([image], models(parts, "synthetic"), regions=[FaceRegion(box, left_half)])
    status = result.images[0]
    assert 0.4 < status.region["visible_share"] < 0.6 and status.region["mask"] is True
    features = result.encodings[0].features
    assert np.all(features[:, 300:] == 255)                               # right of the face centre: white
    assert not np.all(features[:, :200] == 255)
    no_mask = encode_identity([image], models(parts, "synthetic"), regions=[FaceRegion(box)])
    assert not torch.equal(no_mask.identity.tokens, result.identity.tokens)

    sliver = np.zeros((600, 800), bool)
    sliver[:, :320] = True                        # only the face's left edge
    with pytest.raises(FaceRegionError, match=r"face_region\[0\]: the mask leaves only \d+% of the face visible"):
        encode_identity([image], models(parts, "synthetic"),
                        regions=[FaceRegion(box, sliver, source="face_region[0]")])


def test_a_region_drawn_on_another_image_is_dropped_with_a_warning(parts):
    image = np.random.default_rng(5).integers(0, 120, (400, 500, 3), dtype=np.uint8)
    face = synth.paint_faces(640, 480, [(9, 7)])
    other = FaceRegion((100, 100, 150, 180), image_hash=content_hash(image[::-1].copy()), source="face_region[0]")
    with pytest.raises(NoFaceError):
        encode_identity([image], models(parts, "synthetic"), regions=[other])
    # In a batch, the region follows its photo by hash.
    mine = FaceRegion((100, 100, 150, 180), image_hash=content_hash(image), source="face_region[0]")
    result = encode_identity([face, image], models(parts, "synthetic"), names=["a", "b"], regions=[mine, other])
    assert result.images[0].region is None and result.images[1].region["mode"] == "box-only"
    assert any("face_region[0] was drawn on another image" in w for w in result.warnings)


def test_the_cache_knows_the_region(parts):
    image = np.random.default_rng(6).integers(0, 120, (400, 500, 3), dtype=np.uint8)
    cache = EncodeCache()
    a = encode_identity([image], models(parts, "synthetic"), regions=[FaceRegion((100, 80, 150, 200))], cache=cache)
    encode_identity([image], models(parts, "synthetic"), regions=[FaceRegion((100, 80, 150, 200))], cache=cache)
    b = encode_identity([image], models(parts, "synthetic"), regions=[FaceRegion((200, 80, 150, 200))], cache=cache)
    assert cache.hits == 1 and cache.misses == 2
    assert not torch.equal(a.identity.tokens, b.identity.tokens)


def test_status_boxes_are_in_the_photo_pixels_for_large_photos(parts):
    image = np.random.default_rng(7).integers(0, 120, (1500, 2000, 3), dtype=np.uint8)
    assert resize_long_side(image).shape[:2] == (768, 1024)
    region = FaceRegion((800, 500, 300, 400))
    status = encode_identity([image], models(parts, "synthetic"), regions=[region]).images[0]
    np.testing.assert_allclose(status.bbox, [800, 500, 1100, 900], atol=0.01)
    assert status.face_boxes == [status.bbox] and status.image_size == (2000, 1500)
