"""Identity encoding: reference images -> face -> ArcFace + EVA -> IDFormer tokens, fusion, cache."""

import numpy as np
import pytest
import torch

from pulid_flux import NoFaceError, PulidError, PulidFlux
from pulid_flux.engine.eva import EvaVisionTower, face_features_image
from pulid_flux.face import (
    align_ffhq,
    load_bisenet,
    load_engine,
    norm_crop,
    parse_labels,
)
from pulid_flux.engine.encoder import (
    EncodeCache,
    FaceModels,
    encode_identity,
    fuse_tokens,
    resize_long_side,
)
from pulid_flux.images import load_rgb
from pulid_flux.tiny import insightface_pack as synth
from pulid_flux.tiny.bisenet import save_random_bisenet
from pulid_flux.tiny.pulid import pulid_state_dict


@pytest.fixture(scope="module")
def parts(tmp_path_factory, golden_dir):
    tmp = tmp_path_factory.mktemp("encode")
    pack = synth.build_pack(tmp / "antelopev2", decoys=False)
    return {
        "engine": load_engine("insightface", pack_dir=pack, device="cpu"),
        "pack": pack,
        "parser": load_bisenet(save_random_bisenet(tmp / "parsing_bisenet.pth")),
        "eva": EvaVisionTower.from_file(golden_dir / "eva.safetensors"),
        "pulid": PulidFlux.from_state_dict(pulid_state_dict(), source="tiny_pulid.safetensors"),
    }


def models(parts, detector=None, recognizer=None):
    engine = parts["engine"]
    return FaceModels(detector or engine, recognizer or engine, parts["parser"], parts["eva"], parts["pulid"])


def face_photo(width, height, cells, seed=0):
    """Synthetic-detector faces on a textured background (so every face crop differs)."""
    image = synth.paint_faces(width, height, cells)
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, image.shape, dtype=np.uint8)
    background = np.all(image == synth.BACKGROUND_RGB, axis=-1)
    image[background] = (noise[background] // 2 + 64)     # red minus blue stays small: no false faces
    return image


def test_one_image_follows_the_official_pipeline(parts):
    image = face_photo(1280, 960, [(7, 5)])
    result = encode_identity([image], models(parts), names=["ref.png"])
    (status,) = result.images
    assert status.face_found and not status.fallback_used and status.resized_from == (1280, 960)
    left, top, right, bottom = synth.BOX_DISTANCES
    np.testing.assert_allclose(status.bbox, np.array([224 - left * 32, 160 - top * 32, 224 + right * 32,
                                                      160 + bottom * 32]) / 0.5, atol=0.05)

    # Rebuild every step by hand from the 1024 px working image.
    work = resize_long_side(image)
    assert work.shape == (768, 1024, 3)
    (face,) = parts["engine"].detect(work)
    aligned, _ = align_ffhq(work, face.kps)
    enc = result.encodings[0]
    np.testing.assert_array_equal(enc.aligned, aligned)
    aligned_t = torch.from_numpy(aligned).permute(2, 0, 1)[None].float() / 255
    features = face_features_image(aligned_t, parse_labels(parts["parser"], aligned_t))
    cls, hidden = parts["eva"].encode_face(features)
    id_cond = torch.cat([torch.from_numpy(face.embedding)[None], cls.float()], dim=1)
    # The ArcFace half is the raw vector, the EVA half is L2-normalised.
    torch.testing.assert_close(enc.id_cond, id_cond)
    assert abs(float(enc.id_cond[0, :512].norm()) - 1.0) > 0.05
    assert float(enc.id_cond[0, 512:].norm()) == pytest.approx(1.0, abs=1e-4)
    torch.testing.assert_close(result.identity.tokens, parts["pulid"].encode(id_cond, hidden).float())
    torch.testing.assert_close(result.identity.uncond_tokens, parts["pulid"].encode_uncond(1).float())
    assert result.identity.tokens.shape == (1, 32, 64)
    assert result.identity.info["images"][0]["name"] == "ref.png" and result.warnings == []

    aligned_preview, features_preview = result.previews[0]
    assert aligned_preview.shape == features_preview.shape == (512, 512, 3)
    white = np.all(features_preview == 255, axis=-1)
    gray = (features_preview[..., 0] == features_preview[..., 1]) & (features_preview[..., 1] == features_preview[..., 2])
    assert white.any() and gray.all()


def test_fusion_modes(parts):
    # Same face geometry in detector pixels, but the second image is half the size: a smaller face.
    images = [face_photo(1280, 960, [(7, 5)], seed=1), face_photo(640, 480, [(5, 6)], seed=2)]
    cache = EncodeCache()
    results = {f: encode_identity(images, models(parts), fusion=f, cache=cache) for f in ("mean", "max_norm",
                                                                                          "weighted")}
    assert cache.misses == 2 and cache.hits == 4
    per_image = torch.cat([e.tokens for e in results["mean"].encodings])
    assert per_image.shape == (2, 32, 64) and not torch.allclose(per_image[0], per_image[1])
    torch.testing.assert_close(results["mean"].identity.tokens, per_image.mean(0, keepdim=True))

    fused = results["max_norm"].identity.tokens[0]
    norms = per_image.norm(dim=-1)
    for q in range(32):
        torch.testing.assert_close(fused[q], per_image[int(norms[:, q].argmax()), q])
    assert not torch.allclose(fused, results["mean"].identity.tokens[0])

    statuses = results["weighted"].images
    # Face side in working pixels: the box is 128x160 detector pixels; image 1 works at 1024x768
    # (detector scale 0.625), image 2 at 640x480 (scale 1).
    sides = [np.sqrt(128 * 160) / 0.625, np.sqrt(128 * 160)]
    weights = torch.tensor([s.score * side for s, side in zip(statuses, sides)], dtype=torch.float32)
    assert weights[0] > weights[1]
    expected = (per_image * (weights / weights.sum()).view(2, 1, 1)).sum(0, keepdim=True)
    torch.testing.assert_close(results["weighted"].identity.tokens, expected, rtol=1e-4, atol=1e-5)


def test_missing_faces(parts):
    blank = np.full((300, 400, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match=r"no face found in any reference image \(a.png, b.png\)"):
        encode_identity([blank, blank], models(parts), names=["a.png", "b.png"])
    result = encode_identity([blank, face_photo(640, 480, [(9, 7)])], models(parts), names=["a.png", "b.png"])
    assert [s.face_found for s in result.images] == [False, True]
    assert result.warnings == ["a.png: no face found, image skipped"]
    assert len(result.encodings) == 1 and result.identity.info["images"][0]["face_found"] is False


def test_face_choice_picks_the_same_face_everywhere(parts):
    image = face_photo(640, 480, [(4, 6), (14, 6)])
    left = encode_identity([image], models(parts), face_order="left_to_right", face_index=0)
    right = encode_identity([image], models(parts), face_order="left_to_right", face_index=1)
    assert left.images[0].bbox[0] < right.images[0].bbox[0] and right.images[0].faces_detected == 2
    faces = parts["engine"].detect(image, order="left_to_right")
    torch.testing.assert_close(right.encodings[0].id_cond[0, :512], torch.from_numpy(faces[1].embedding))
    np.testing.assert_array_equal(right.encodings[0].aligned, align_ffhq(image, faces[1].kps)[0])
    with pytest.raises(ValueError, match="face index 2 asked for group.png, but only 2"):
        encode_identity([image], models(parts), names=["group.png"], face_order="left_to_right", face_index=2)


def test_a_128d_recognizer_is_refused(parts):
    dlib_engine = load_engine("dlib")
    with pytest.raises(PulidError, match="dlib:hog gives 128-d face vectors.*trained on 512-d.*insightface engine "
                                         "as recognizer"):
        encode_identity([face_photo(640, 480, [(9, 7)])], models(parts, recognizer=dlib_engine))


def test_other_detector_with_recognizer_fallback(parts, faces_dir):
    """dlib finds the real face; the synthetic recognizer's detector sees none -> ArcFace on the 112 crop."""
    photo = load_rgb(faces_dir / "photos" / "obama_07_small.jpg")
    dlib_engine = load_engine("dlib")
    result = encode_identity([photo], models(parts, detector=dlib_engine), names=["obama.jpg"])
    (status,) = result.images
    assert status.face_found and status.fallback_used
    assert "obama.jpg: insightface:antelopev2 found no face where dlib:hog did" in result.warnings[0]
    (face,) = dlib_engine.detect(photo, embed=False)
    expected = parts["engine"].embed_aligned(norm_crop(photo, face.kps, 112)[0])
    torch.testing.assert_close(result.encodings[0].id_cond[0, :512], torch.from_numpy(expected))
    np.testing.assert_array_equal(result.encodings[0].aligned, align_ffhq(photo, face.kps)[0])


def test_other_detector_with_matching_recognizer(parts):
    other = load_engine("insightface", pack_dir=parts["pack"], det_thresh=0.3, device="cpu")
    image = face_photo(640, 480, [(4, 6), (14, 6)])
    result = encode_identity([image], models(parts, detector=other), face_order="right_to_left")
    assert not result.images[0].fallback_used and result.warnings == []
    right = parts["engine"].detect(image, order="right_to_left")[0]
    torch.testing.assert_close(result.encodings[0].id_cond[0, :512], torch.from_numpy(right.embedding))


def test_cache_means_no_recomputation(parts, monkeypatch):
    calls = []
    original = parts["eva"].encode_face
    monkeypatch.setattr(parts["eva"], "encode_face", lambda x: calls.append(1) or original(x))
    image = face_photo(640, 480, [(9, 7)], seed=5)
    cache = EncodeCache()
    first = encode_identity([image], models(parts), names=["a.png"], cache=cache)
    second = encode_identity([image.copy()], models(parts), names=["renamed.png"], cache=cache)
    assert len(calls) == 1 and cache.hits == 1
    torch.testing.assert_close(first.identity.tokens, second.identity.tokens)
    assert second.images[0].name == "renamed.png"
    encode_identity([image], models(parts), face_order="score", cache=cache)      # another setting
    assert len(calls) == 2 and len(cache) == 2


def test_fuse_tokens_checks_its_arguments():
    tokens = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="unknown fusion 'median'"):
        fuse_tokens(tokens, "median")
    with pytest.raises(ValueError, match="2 non-negative weights"):
        fuse_tokens(tokens, "weighted", [1.0, -1.0])
    torch.testing.assert_close(fuse_tokens(tokens, "weighted", [0.0, 2.0]), tokens[1:])


def test_real_photo_through_the_whole_pipeline(parts, faces_dir):
    """A real photo, the golden tiny EVA, tiny PuLID weights and a random BiSeNet: shapes, dtype,
    determinism and a cache hit on the second call."""
    photo = load_rgb(faces_dir / "photos" / "obama_01.jpg")
    m = models(parts, detector=load_engine("dlib"))
    first = encode_identity([photo], m, names=["obama_01.jpg"])
    again = encode_identity([photo], m, names=["obama_01.jpg"])
    pulid = parts["pulid"]
    assert first.identity.tokens.shape == (1, pulid.num_tokens, pulid.token_dim)
    assert first.identity.tokens.dtype == torch.float32
    assert first.identity.uncond_tokens.shape == first.identity.tokens.shape
    assert torch.equal(first.identity.tokens, again.identity.tokens)            # deterministic
    id_cond = first.encodings[0].id_cond
    assert id_cond.shape == (1, 1280)
    assert abs(float(id_cond[0, 512:].norm()) - 1.0) < 1e-4                    # EVA CLS normalised
    cache = EncodeCache()
    encode_identity([photo], m, cache=cache)
    cached = encode_identity([photo], m, cache=cache)
    assert cache.hits == 1 and torch.equal(cached.identity.tokens, first.identity.tokens)
