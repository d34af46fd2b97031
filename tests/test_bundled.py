from core import bundled

import pytest


def test_every_installed_bundled_model_verifies():
    for name, model in bundled.BUNDLED.items():
        if model.optional and not bundled.available(name):
            continue
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


def test_an_optional_model_not_installed_says_how_to_get_it():
    name = next(n for n, m in bundled.BUNDLED.items() if m.optional)
    if bundled.available(name):
        pytest.skip("the optional model is installed here")
    with pytest.raises(bundled.BundledModelError, match="make models-extra"):
        bundled.locate(name)


def _verify_many(files: list[str]) -> str | None:
    import hashlib
    from pathlib import Path

    try:
        for name in files:
            data = Path(name).read_bytes()
            bundled.verify_file(Path(name), hashlib.sha256(data).hexdigest())
    except Exception as exc:  # reported to the test, which fails on it
        return f"{type(exc).__name__}: {exc}"
    return None


def test_workers_verifying_models_at_once_on_a_fresh_cache_all_succeed(tmp_path, monkeypatch):
    """Data-parallel workers start together and verify the bundled model on first use; each
    writes the record of verified files, which a fixed temporary name made them trip over
    (one failed its model turn with FileNotFoundError)."""
    import multiprocessing

    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    files = []
    for k in range(40):
        path = tmp_path / f"weights-{k}.bin"
        path.write_bytes(bytes([k]) * 1000)
        files.append(str(path))
    with multiprocessing.get_context("fork").Pool(4) as pool:
        errors = pool.map(_verify_many, [files[k::4] for k in range(4)] * 4)
    assert errors == [None] * 16
    assert not list((tmp_path / "cache").glob("*.tmp"))  # nothing left half-written
