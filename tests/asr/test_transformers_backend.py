"""The transformers backend on tiny random-weight checkpoints saved to disk.

The text is random; what is checked is the real loading path (Gemma 3n's too: timm,
torchvision, its processor and chat template), batching
(padding + masks give the same greedy result as one clip at a time), order,
long audio, per-clip errors and that ``free()`` lets the model go.
"""

from core.asr import AsrModelSpec, DecodeOptions, Transcript, create_backend
from core.hub import ModelUnavailableError

import gc
import logging
import weakref

import numpy as np
import pytest

from tests.tiny_models import (
    build_gemma3n,
    build_seamless_v2,
    build_wav2vec2,
    build_whisper,
    noise_clips,
)

MIXED = [1.0, 3.5, 7.0, 0.4, 2.2, 12.0]  # seconds, deliberately unsorted
GREEDY = DecodeOptions(language="fr", max_new_tokens=10, batch_size=4)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-asr")


def _backend(folder, family: str, languages=("*",)):
    """In fp32: these checks compare greedy texts exactly, and bf16's rounding (which varies
    with the batch's shape) can flip a random model's near-tied argmax (tests/asr/test_dtype.py
    covers bf16)."""
    spec = AsrModelSpec(key=f"{family}:tiny-random", source=str(folder), family=family,
                        languages=tuple(languages))
    backend = create_backend(spec, dtype="float32")
    backend.load()
    return backend


@pytest.fixture(scope="module")
def whisper(tiny_dir):
    backend = _backend(build_whisper(tiny_dir / "whisper"), "whisper")
    yield backend
    backend.free()


@pytest.fixture(scope="module")
def wav2vec2(tiny_dir):
    backend = _backend(build_wav2vec2(tiny_dir / "wav2vec2"), "wav2vec2", ["fr"])
    yield backend
    backend.free()


@pytest.fixture(scope="module")
def seamless(tiny_dir):
    backend = _backend(build_seamless_v2(tiny_dir / "seamless"), "seamless")
    yield backend
    backend.free()


@pytest.fixture(scope="module")
def gemma3n(tiny_dir):
    backend = _backend(build_gemma3n(tiny_dir / "gemma3n"), "gemma3n")
    yield backend
    backend.free()


@pytest.fixture(params=["whisper", "wav2vec2", "seamless", "gemma3n"])
def backend(request):
    return request.getfixturevalue(request.param)


def test_a_batch_gives_one_transcript_per_clip_in_order(backend):
    clips = noise_clips(MIXED)
    out = backend.transcribe(clips, GREEDY)
    assert len(out) == len(clips)
    assert all(isinstance(t, Transcript) and t.ok and isinstance(t.text, str) for t in out)
    assert [t.audio_seconds for t in out] == pytest.approx(MIXED, abs=1e-3)
    assert all(t.seconds > 0 for t in out)


def test_batched_greedy_decoding_matches_one_clip_at_a_time(backend):
    clips = noise_clips(MIXED, seed=3)
    batched = [t.text for t in backend.transcribe(clips, GREEDY)]
    alone = [backend.transcribe([clip], GREEDY)[0].text for clip in clips]
    assert batched == alone
    assert len(set(batched)) > 1  # the random models do depend on their input


def test_audio_longer_than_30_seconds_is_transcribed_whole(backend):
    clips = noise_clips([70.0, 4.0, 41.0], seed=5)
    out = backend.transcribe(clips, GREEDY)
    assert [t.ok for t in out] == [True, True, True]
    assert [t.audio_seconds for t in out] == pytest.approx([70.0, 4.0, 41.0], abs=1e-3)
    short = backend.transcribe([clips[0][: 16_000 * 20]], GREEDY)[0]
    assert len(out[0].text) > len(short.text)  # the windows after the first count too


def test_empty_and_stereo_clips_are_accepted(whisper):
    stereo = np.stack(noise_clips([1.0, 1.0]))
    out = whisper.transcribe([np.zeros(0, np.float32), stereo], GREEDY)
    assert out[0].text == "" and out[0].ok
    assert out[1].ok and out[1].audio_seconds == pytest.approx(1.0)


def test_old_fine_tune_forced_decoder_ids_are_dropped_and_language_tables_rebuilt(whisper):
    model = whisper.model
    assert model.config.forced_decoder_ids is None
    assert getattr(model.generation_config, "forced_decoder_ids", None) is None
    assert model.generation_config.lang_to_id["<|fr|>"] == 50265
    assert model.generation_config.task_to_id == {"transcribe": 50359, "translate": 50358}
    assert model.generation_config.is_multilingual


def test_a_batch_logs_no_notice_that_max_new_tokens_wins(whisper):
    """Whisper checkpoints carry max_length 448; transformers said on every generate() that
    the max_new_tokens ERT passes wins: a line per batch in a worker's log."""
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    library = logging.getLogger("transformers")  # its records stop there (no propagation)
    library.addHandler(handler)
    try:
        for _ in range(2):
            assert all(t.ok for t in whisper.transcribe(noise_clips([1.0, 2.0]), GREEDY))
    finally:
        library.removeHandler(handler)
    assert not [m for m in seen if "will take precedence" in m]


def test_whisper_detects_the_language_when_none_is_given(whisper):
    clips = noise_clips([2.0, 5.0, 3.0], seed=8)
    detected = whisper.detect_languages(clips)
    known = {token[2:-2] for token in whisper.model.generation_config.lang_to_id}
    assert all(lang in known for lang in detected)
    out = whisper.transcribe(clips, DecodeOptions(max_new_tokens=5))
    assert all(t.ok for t in out)
    assert [t.language for t in out] == detected  # recorded per clip
    # ... and each clip was decoded in its detected language, as if it had been given.
    for clip, t in zip(clips, out, strict=True):
        given = whisper.transcribe([clip], DecodeOptions(language=t.language, max_new_tokens=5))
        assert given[0].text == t.text


def test_each_clip_is_decoded_in_its_own_language(whisper, seamless):
    clips = noise_clips([2.0, 4.0, 3.0, 5.0], seed=9)
    languages = ["fr", "en", "de", "fr"]
    for backend in (whisper, seamless):
        options = DecodeOptions(max_new_tokens=8, batch_size=4)
        mixed = backend.transcribe(clips, options, languages=languages)
        assert [t.language for t in mixed] == languages
        alone = [backend.transcribe([c], DecodeOptions(language=lang, max_new_tokens=8))[0].text
                 for c, lang in zip(clips, languages, strict=True)]
        assert [t.text for t in mixed] == alone
        # The language matters to the model, so dropping it would change these texts.
        other = [backend.transcribe([c], DecodeOptions(language="it", max_new_tokens=8))[0].text
                 for c in clips]
        assert other != alone


def test_the_run_language_overrides_each_clips_own(whisper):
    clips = noise_clips([2.0, 3.0], seed=10)
    out = whisper.transcribe(clips, DecodeOptions(language="es", max_new_tokens=5),
                             languages=["fr", "en"])
    assert [t.language for t in out] == ["es", "es"]


def test_gpu_log_mel_features_match_the_feature_extractor():
    """The GPU path's own log-mel (features left on the device) computes what
    WhisperFeatureExtractor does; checked here on the CPU, where torch does the same math."""
    from core.asr.whisper_runner import _plain_whisper_extractor, log_mel_on_device

    from transformers import WhisperFeatureExtractor

    for mels in (80, 128):
        extractor = WhisperFeatureExtractor(feature_size=mels)
        assert _plain_whisper_extractor(extractor)
        clips = noise_clips([30.0, 0.5, 7.3, 12.01], seed=mels)
        ref = extractor(clips, sampling_rate=16_000, return_tensors="pt",
                        return_attention_mask=True)
        ours = log_mel_on_device(extractor, clips, "cpu")
        diff = (ours["input_features"].double() - ref["input_features"].double()).norm()
        assert diff / ref["input_features"].double().norm() < 1e-5
        assert ours["attention_mask"].tolist() == ref["attention_mask"].tolist()
        assert ours["attention_mask"].dtype == ref["attention_mask"].dtype


def test_ctc_windows_keep_each_frame_of_the_clip_once(wav2vec2):
    import torch

    clips = noise_clips([12.0, 3.0], seed=9)
    with torch.inference_mode():
        whole = wav2vec2.runner.logits(clips, DecodeOptions(chunk_seconds=30))
        windowed = wav2vec2.runner.logits(clips, DecodeOptions(chunk_seconds=4,
                                                               stride_seconds=1, batch_size=3))
    # 12 s in 4 s windows with 1 s of context each side: 6 windows, 5 seams of ±1 frame.
    assert abs(windowed[0].shape[0] - whole[0].shape[0]) <= 5
    assert windowed[1].shape == whole[1].shape  # a clip within one window is not cut
    assert whole[0].shape[0] == pytest.approx(12 * 50, abs=2)  # 20 ms frames


def test_a_clip_that_fails_gets_an_error_not_an_exception(seamless):
    out = seamless.transcribe(noise_clips([1.0, 2.0]), DecodeOptions(language=None))
    assert [t.ok for t in out] == [False, False]
    assert all("spoken language" in t.error for t in out)


def test_free_releases_the_model_and_a_later_call_reloads_it(tiny_dir):
    backend = _backend(build_wav2vec2(tiny_dir / "w2v-free"), "wav2vec2")
    ref = weakref.ref(backend.model)
    backend.free()
    gc.collect()
    assert ref() is None and not backend.loaded
    assert backend.transcribe(noise_clips([1.0]), GREEDY)[0].ok  # lazily reloaded
    backend.free()


def test_a_model_missing_offline_says_so_clearly():
    spec = AsrModelSpec(key="whisper:small", source="openai/whisper-small", family="whisper")
    with pytest.raises(ModelUnavailableError, match="not in the local cache, and the hub is "
                                                    "unreachable"):
        create_backend(spec).load()


def test_gpu_mode_without_a_gpu_is_refused_clearly(tiny_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    spec = AsrModelSpec(key="wav2vec2:x", source=str(tiny_dir / "wav2vec2"), family="wav2vec2")
    with pytest.raises(ModelUnavailableError, match="GPU mode is not available"):
        create_backend(spec, device="cuda").load()


@pytest.mark.slow
def test_real_whisper_weights_converted_from_ctranslate2_transcribe_english(tmp_path):
    """The bundled tiny.en's own weights, back in transformers format, through this backend."""
    from core import bundled
    from core.asr.ct2_whisper import convert, read_ct2_variables
    from core.demo_data import synthesize
    from core.metrics import score

    source = bundled.locate("faster-whisper-tiny.en")
    variables = read_ct2_variables(source / "model.bin")
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    folder = convert(source, tmp_path / "tiny.en")
    sentences = ["The quick brown fox jumps over the lazy dog.",
                 "Please close the door when you leave the room."]
    clips = [synthesize(s, "en-us", words_per_minute=None, word_gap=4) for s in sentences]
    backend = _backend(folder, "whisper")
    assert not backend.runner.multilingual  # English-only, like the original
    out = backend.transcribe(clips, DecodeOptions(batch_size=2))
    backend.free()
    assert score(sentences, [t.text for t in out], "en").wer < 0.25


def test_gemma3n_prompt_names_the_clip_language_and_the_model_hears_it(gemma3n):
    prompts: list[str] = []
    generate = gemma3n.runner.model.generate

    def spy(**kwargs):
        prompts.extend(gemma3n.runner.processor.batch_decode(kwargs["input_ids"]))
        return generate(**kwargs)

    clips = noise_clips([2.0, 3.0], seed=4)
    gemma3n.runner.model.generate = spy
    try:
        french = gemma3n.transcribe(clips, DecodeOptions(language="fr", max_new_tokens=10))
        unknown = gemma3n.transcribe(clips, DecodeOptions(max_new_tokens=10))
    finally:
        del gemma3n.runner.model.generate
    assert all("Transcribe this French audio verbatim." in p for p in prompts[:2])
    assert not any("French" in p or "English" in p for p in prompts[2:])
    assert all(p.count("<audio_soft_token>") == 188 for p in prompts)  # the clip's soft tokens
    assert all(t.ok for t in french + unknown)
    assert [t.text for t in french] != [t.text for t in unknown]  # the prompt reaches it


def test_gemma3n_frames_of_a_batched_clip_are_those_it_has_alone(gemma3n):
    from core.asr.transformers_runners import gemma3n_frame_mask

    extractor = gemma3n.runner.processor.feature_extractor
    clips = noise_clips([1.0, 3.5, 7.0, 0.4, 0.0321], seed=2)
    batch = extractor(clips, sampling_rate=16_000, return_tensors="pt")
    alone = [extractor([c], sampling_rate=16_000, return_tensors="np")["input_features"].shape[1]
             for c in clips]
    fixed = gemma3n_frame_mask(extractor, [c.size for c in clips],
                               batch["input_features_mask"])
    assert fixed.sum(axis=1).tolist() == alone
    assert batch["input_features_mask"].sum(axis=1).tolist() != alone  # what it corrects
