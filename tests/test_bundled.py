from core import bundled

import pytest


def test_every_bundled_model_verifies():
    for name in bundled.BUNDLED:
        folder = bundled.locate(name)
        for filename in bundled.BUNDLED[name].checksums:
            assert (folder / filename).is_file()


def test_split_whisper_base_is_joined_once_into_the_cache():
    folder = bundled.locate("faster-whisper-base")
    model_bin = folder / "model.bin"
    mtime = model_bin.stat().st_mtime_ns
    assert bundled.locate("faster-whisper-base") == folder
    assert model_bin.stat().st_mtime_ns == mtime


def test_tampered_file_is_refused(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"not the real weights")
    with pytest.raises(bundled.BundledModelError, match="checksum mismatch"):
        bundled.verify_file(target, "0" * 64)


def test_unknown_bundled_model_names_the_known_ones():
    with pytest.raises(bundled.BundledModelError, match="all-minilm-l6-v2"):
        bundled.locate("nope")
