"""The one way tests reach the shared test data (tests/conftest.py ``shared_data``): without it a test
skips, and the reason names the missing file and how to provide it."""

import pytest


def test_absent_shared_data_skips_naming_the_file_and_the_fix(shared_data, tmp_path):
    absent = type(shared_data)(tmp_path / "nowhere")
    with pytest.raises(pytest.skip.Exception) as info:
        absent.require("golden/pulid_flux_a")
    reason = str(info.value)
    assert str(tmp_path / "nowhere" / "golden" / "pulid_flux_a") + " is missing" in reason
    assert "../shared" in reason and "PULID_STUDIO_SHARED" in reason


def test_present_shared_data_is_returned(shared_data, tmp_path):
    (tmp_path / "faces").mkdir()
    assert type(shared_data)(tmp_path).require("faces") == tmp_path / "faces"
