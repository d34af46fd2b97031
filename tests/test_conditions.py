"""Robustness conditions on real espeak-ng clips: reproducible audio, noise at the asked SNR,
a telephone band with nothing above 4 kHz, codecs through PyAV's encoders, and bad input
refused with a clear message before anything runs."""

from __future__ import annotations

from core import conditions, perturbations
from core.audio import probe, resample
from core.conditions import ConditionError, expand, load_conditions, parse_conditions

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

# Every built-in condition but the two long rooms (seconds of image sources on first use).
QUICK = [c for c in parse_conditions("all", load_conditions())
         if c.label not in ("reverb:rt60=0.6", "reverb:rt60=1")]
RANDOM_KINDS = ("white_noise", "pink_noise", "babble", "packet_loss")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from core.datasets import load_dataset_spec
    from core.demo_data import make_demo_dataset

    manifest = make_demo_dataset(tmp_path_factory.mktemp("clips") / "demo", langs=("en",),
                                 count=8)
    return load_dataset_spec(str(manifest))


def _digests(samples, chosen) -> dict[str, str]:
    """The SHA-256 of each work item's audio, for the first clip under each condition."""
    items = [i for i in expand(samples, chosen) if i.clip_id == samples[0].id]
    return {i.condition: hashlib.sha256(i.load_audio().tobytes()).hexdigest() for i in items}


def test_each_condition_gives_the_same_bytes_for_the_same_clip_and_seed(clips):
    """Twice here, and once in another process (no hash randomisation, no global RNG):
    the same bytes; another registry seed draws other noise, another clip other noise."""
    here = _digests(clips, QUICK)
    assert here == _digests(clips, QUICK)
    manifest = clips[0].audio_filepath.parent.parent / "manifest.jsonl"
    code = ("import json, sys; from tests.test_conditions import QUICK, _digests; "
            "from core.datasets import load_dataset_spec; "
            f"print(json.dumps(_digests(load_dataset_spec({str(manifest)!r}), QUICK)))")
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                           text=True, check=True)
    assert json.loads(other.stdout.strip().splitlines()[-1]) == here
    assert len(set(here.values())) == len(here)  # every condition changes the clip
    reseeded = [dataclasses.replace(c, spec=dataclasses.replace(c.spec, seed=1))
                for c in QUICK if c.spec is not None and c.spec.kind in RANDOM_KINDS]
    again = _digests(clips, reseeded)
    assert all(again[c.label] != here[c.label] for c in reseeded)
    noise = parse_conditions("noise:snr=10")[0]
    audio = clips[0].load_audio()
    assert not np.array_equal(noise.apply(audio, "a"), noise.apply(audio, "b"))
    # What a page plays is what the models heard.
    heard = next(i for i in expand(clips, parse_conditions("babble:snr=5"))
                 if i.clip_id == clips[0].id).load_audio()
    assert hashlib.sha256(heard.tobytes()).hexdigest() == here["babble:snr=5"]
    assert probe(perturbations.wav_bytes(heard)).duration == pytest.approx(heard.size / 16_000)


def _registry(tmp_path: Path, body: str) -> conditions.ConditionRegistry:
    path = tmp_path / "conditions.toml"
    path.write_text(body)
    return load_conditions(path)


def _snr(clean: np.ndarray, mixed: np.ndarray) -> float:
    """The SNR of ``mixed`` against the clean clip it holds (a quiet one: the mix was not
    scaled down to stay under full scale)."""
    residual = mixed.astype(np.float64) - clean
    return 10 * np.log10(perturbations.speech_power(clean) / np.mean(residual ** 2))


def test_noise_is_mixed_at_the_asked_snr_of_the_clips_speech_level(clips, tmp_path):
    recordings = tmp_path / "noise"
    recordings.mkdir()
    rumble = np.random.default_rng(3).standard_normal(48_000).cumsum()
    rumble = (rumble - rumble.mean()) / np.abs(rumble).max() * 0.3  # brown-ish, 3 s
    with wave.open(str(recordings / "hum.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((rumble * 32767).astype("<i2").tobytes())
    severities = "severities = [-10, 0, 10, 30, 60]"
    registry = _registry(tmp_path, "\n".join(
        f'[conditions.{name}]\nkind = "{kind}"\n{severities}\n' + extra
        for name, kind, extra in (("white", "white_noise", ""), ("pink", "pink_noise", ""),
                                  ("babble", "babble", "talkers = [3, 6]"),
                                  ("room", "noise_dir", f'noise_dir = "{recordings}"'))))
    chosen = parse_conditions("white,pink,babble,room", registry)
    assert len(chosen) == 20
    pool = conditions.ClipPool(clips)
    for sample in clips[:3]:
        loud = sample.load_audio()
        quiet = loud * 0.02  # the SNR does not depend on the level; the check needs room
        for condition in chosen:
            mixed = condition.apply(quiet, sample.id, pool)
            measured = _snr(quiet, mixed)
            assert measured == pytest.approx(condition.value, abs=0.5), condition.label
            assert np.abs(condition.apply(loud, sample.id, pool)).max() <= 0.99 + 1e-6


def _band_share(audio: np.ndarray, low: float, high: float) -> float:
    freqs = np.fft.rfftfreq(audio.size, 1 / 16_000)
    power = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def test_telephone_keeps_the_300_to_3400_hz_band_and_nothing_above_4_khz(clips):
    audio = clips[0].load_audio()
    phone = parse_conditions("telephone")[0].apply(audio, clips[0].id)
    assert phone.size == audio.size
    assert _band_share(audio, 4000, 8000) > 10 ** (-2.5)  # the clip had something there
    assert _band_share(phone, 4000, 8000) < 10 ** (-4.5)  # below -45 dB: empty
    assert _band_share(phone, 0, 300) < _band_share(audio, 0, 300) / 5
    assert _band_share(phone, 300, 3400) > 0.9


@pytest.mark.parametrize("label, codec, decoder, container, rate", [
    ("telephone", "pcm_mulaw", "pcm_mulaw", "wav", 8000),
    ("mobile:kbps=4.75", "libopencore_amrnb", "amrnb", "amr", 8000),
    ("voip:kbps=8", "libopus", "opus", "ogg", 16000),
    ("mp3:kbps=32", "libmp3lame", "mp3float", "mp3", 16000)])
def test_codecs_round_trip_through_pyavs_encoders(clips, label, codec, decoder, container,
                                                  rate):
    """The bytes are the codec's own (FFmpeg reads them back as that codec, at about the
    asked bit rate), and what comes back is the clip: as long, the same envelope."""
    audio = clips[1].load_audio()
    condition = parse_conditions(label)[0]
    bit_rate = int(condition.value * 1000) if condition.value else None
    narrow = resample(audio, 16_000, rate) if rate != 16_000 else audio
    data = perturbations.encode_audio(narrow, rate, codec, container, bit_rate)
    assert data == perturbations.encode_audio(narrow, rate, codec, container, bit_rate)
    info = probe(data)
    assert info.codec == decoder and info.container.startswith(container)
    assert info.duration == pytest.approx(audio.size / 16_000, abs=0.05)
    if bit_rate:
        assert len(data) * 8 / info.duration == pytest.approx(bit_rate, rel=0.25)
    heard = condition.apply(audio, clips[1].id)
    assert heard.size == audio.size

    def envelope(a: np.ndarray) -> np.ndarray:
        return 10 * np.log10(perturbations._frame_powers(a, 16_000) + 1e-10)

    assert np.corrcoef(envelope(audio), envelope(heard))[0, 1] > 0.9


@pytest.mark.parametrize("asked, message", [
    ("nosie:snr=10", "unknown condition 'nosie'"),
    ("noise:snr=7", "7 is not one of noise's severities (20, 10, 5, 0)"),
    ("noise:snr=80", "an SNR of 80 dB is outside [-10, 60] dB"),
    ("noise:snr=-20", "an SNR of -20 dB is outside [-10, 60] dB"),
    ("noise:db=10", "noise takes snr (e.g. noise:snr=20)"),
    ("telephone:kbps=8", "telephone takes no severity"),
    ("reverb:rt60=5", "rt60=5 s is outside [0.1, 1.5] s"),
])
def test_an_unknown_condition_or_severity_is_refused_with_what_to_write(asked, message):
    with pytest.raises(ConditionError, match=re.escape(message)):
        parse_conditions(f"clean,{asked}")


def test_a_registry_snr_outside_the_range_and_an_empty_noise_dir_are_refused(tmp_path):
    with pytest.raises(ConditionError, match=r"condition 'loud'.*SNR of 70 dB is outside"):
        _registry(tmp_path, '[conditions.loud]\nkind = "white_noise"\nseverities = [70]\n')
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no audio here")
    registry = _registry(tmp_path, f'[conditions.cafe]\nkind = "noise_dir"\n'
                                   f'noise_dir = "{empty}"\nseverities = [10]\n')
    with pytest.raises(ConditionError, match=r"cafe: noise_dir .*empty holds no audio file"):
        parse_conditions("cafe:snr=10", registry)


def test_the_cli_refuses_a_bad_condition_before_any_run_is_written(tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "runs"
    with pytest.raises(SystemExit) as stopped:
        main(["evaluate", "--models", "faster-whisper:tiny.en", "--dataset", str(tmp_path),
              "--conditions", "clean,noise:snr=80", "--out", str(out)])
    assert "an SNR of 80 dB is outside [-10, 60] dB" in str(stopped.value.code)
    assert not out.exists()
