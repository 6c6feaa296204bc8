"""The checkpoint recommendation rule on score tables whose right answer is known."""

import pytest

from pulid_flux.sweep.recommend import (
    BEST_IDENTITY,
    CLIP_ONLY,
    IDENTITY_AND_CLIP,
    StepScores,
    recommend,
    recommend_style,
)

STEPS = [250, 500, 750, 1000, 1250, 1500]


def table(identity, clip, steps=STEPS):
    return [StepScores(name=f"id_{s:09d}.safetensors", label=str(s), identity=i, clip=c)
            for s, i, c in zip(steps, identity, clip)]


def test_rising_identity_with_collapsing_adherence_gives_the_knee():
    rows = table(identity=[0.30, 0.48, 0.60, 0.615, 0.625, 0.63],
                 clip=[0.310, 0.309, 0.305, 0.302, 0.280, 0.250])
    result = recommend(rows)
    # best identity 0.63 -> needs >= 0.61; best CLIP 0.310 -> needs >= 0.300: only step 1000 has both.
    assert result.name == "id_000001000.safetensors" and result.label == "1000"
    assert result.mode == IDENTITY_AND_CLIP
    assert result.qualifying == ("id_000001000.safetensors",)
    assert "within δ = 0.02" in result.reason and "within ε = 0.01" in result.reason


def test_flat_identity_gives_the_earliest_step():
    rows = table(identity=[0.600, 0.605, 0.601, 0.603, 0.604, 0.602], clip=[0.30, 0.30, 0.301, 0.30, 0.299, 0.30])
    result = recommend(rows)
    assert result.label == "250" and result.mode == IDENTITY_AND_CLIP
    assert len(result.qualifying) == 6


def test_exact_ties_go_to_the_earlier_step():
    # Two steps share the best identity and the best CLIP score; tolerances of zero leave only them.
    rows = table(identity=[0.40, 0.62, 0.62, 0.50], clip=[0.30, 0.31, 0.31, 0.31], steps=STEPS[:4])
    result = recommend(rows, delta=0.0, epsilon=0.0)
    assert result.label == "500"
    assert result.qualifying == ("id_000000500.safetensors", "id_000000750.safetensors")


def test_within_is_inclusive_at_exactly_delta():
    rows = table(identity=[0.60, 0.62], clip=[0.30, 0.30], steps=STEPS[:2])
    assert recommend(rows, delta=0.02).label == "250"
    assert recommend(rows, delta=0.019).label == "500"


def test_best_identity_when_nothing_qualifies():
    # The best-identity step has collapsed adherence and no other step is within delta of it.
    rows = table(identity=[0.30, 0.45, 0.70], clip=[0.32, 0.31, 0.20], steps=STEPS[:3])
    result = recommend(rows)
    assert result.label == "750" and result.mode == BEST_IDENTITY
    assert "best mean identity" in result.reason


def test_best_identity_ties_go_to_the_earlier_step():
    rows = table(identity=[0.30, 0.70, 0.70], clip=[0.32, 0.20, 0.21], steps=STEPS[:3])
    assert recommend(rows).label == "500"


def test_a_single_checkpoint_is_recommended():
    rows = [StepScores(name="id.safetensors", label="final", identity=0.5, clip=0.29)]
    result = recommend(rows)
    assert result.name == "id.safetensors" and result.mode == IDENTITY_AND_CLIP


def test_no_faces_recommends_by_clip_alone_and_says_so():
    rows = table(identity=[None] * 4, clip=[0.20, 0.25, 0.248, 0.22], steps=STEPS[:4])
    result = recommend(rows)
    assert result.mode == CLIP_ONLY and result.label == "500"
    assert "No image of any checkpoint holds a face" in result.reason and "CLIP score alone" in result.reason
    # The earliest within epsilon of the best: 0.248 >= 0.25 - 0.01 but 0.20 is not.
    assert recommend(rows, epsilon=0.05).label == "250"


def test_a_checkpoint_without_faces_never_qualifies_on_identity():
    rows = table(identity=[None, 0.60, 0.61], clip=[0.35, 0.30, 0.30], steps=STEPS[:3])
    result = recommend(rows)
    assert result.label != "250"


@pytest.mark.parametrize("delta", [-0.1, float("nan"), "0.02"])
def test_bad_tolerances_are_refused(delta):
    with pytest.raises(ValueError, match="delta"):
        recommend(table([0.5], [0.3], STEPS[:1]), delta=delta)


def test_empty_table_is_refused():
    with pytest.raises(ValueError, match="no checkpoint"):
        recommend([])


def strengths(identity, style):
    return [StepScores(name=f"strength {s:g}", label=f"{s:g}", identity=i, clip=0.3, style_clip=c)
            for s, i, c in zip([0, 0.25, 0.5, 0.75, 1.0], identity, style)]


def test_style_strength_keeps_identity_within_delta():
    rows = strengths(identity=[0.60, 0.595, 0.585, 0.55, 0.40], style=[0.10, 0.15, 0.20, 0.25, 0.30])
    result = recommend_style(rows)
    assert result.label == "0.5"          # 0.75 and 1.0 lose more than 0.02 of identity
    assert result.qualifying == ("strength 0", "strength 0.25", "strength 0.5")


def test_style_strength_without_faces_uses_style_clip_alone():
    rows = strengths(identity=[None] * 5, style=[0.10, 0.15, 0.30, 0.30, 0.25])
    result = recommend_style(rows)
    assert result.mode == CLIP_ONLY and result.label == "0.5"
