"""Tiny random-weight ASR checkpoints, built offline from configs and saved like real ones.

The one home of these builders: the tests, the benchmarks and the scripts
import them from here. They go through the real loading path
(``from_pretrained`` of a folder) in seconds. Their text is random, so tests
check shapes, counts, determinism and batching, not words. Whisper reuses the
bundled faster-whisper base tokenizer (a real multilingual Whisper tokenizer);
Wav2Vec2, Seamless and Gemma 3n get small character vocabularies.
"""

from __future__ import annotations

from core import bundled
from core.audio import SAMPLE_RATE

import json
from pathlib import Path

import numpy as np

FRENCH_CHARS = list("abcdefghijklmnopqrstuvwxyzàâçéèêëîïôùûü'")


def whisper_tokenizer():
    from tokenizers import AddedToken
    from transformers import WhisperTokenizer

    folder = bundled.locate("faster-whisper-base")
    tokenizer = WhisperTokenizer(tokenizer_file=str(folder / "tokenizer.json"))
    # Timestamp tokens, as in the hub's Whisper tokenizers: long-form decoding needs them.
    tokenizer.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", lstrip=False, rstrip=False,
                                     normalized=False) for i in range(1501)])
    return tokenizer


def build_whisper(folder: Path) -> Path:
    """A 2-layer, d_model 64 Whisper saved like an *old* fine-tune: no language
    tables in its generation config and ``forced_decoder_ids`` in its config."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    tokenizer = whisper_tokenizer()
    config = WhisperConfig(
        vocab_size=len(tokenizer), d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
        decoder_ffn_dim=128, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=448, decoder_start_token_id=50258, pad_token_id=50257,
        bos_token_id=50257, eos_token_id=50257, init_std=0.3,
        forced_decoder_ids=[[1, 50259], [2, 50359], [3, 50363]])
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257,
        bos_token_id=50257, max_length=448, begin_suppress_tokens=[220, 50257])
    model.save_pretrained(folder)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(folder)
    return folder


def build_wav2vec2(folder: Path) -> Path:
    """A 2-layer, hidden 32 Wav2Vec2ForCTC with a French character vocabulary."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|",
                                             *FRENCH_CHARS])}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>",
                                     pad_token="<pad>", word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE,
                                         padding_value=0.0, do_normalize=True,
                                         return_attention_mask=True)
    config = Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True,
        conv_bias=True, pad_token_id=0, initializer_range=0.5)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def build_seamless_v2(folder: Path) -> Path:
    """A one-layer SeamlessM4Tv2 speech-to-text model with a character BPE vocabulary."""
    import torch
    from transformers import (
        GenerationConfig,
        SeamlessM4TFeatureExtractor,
        SeamlessM4TProcessor,
        SeamlessM4TTokenizer,
        SeamlessM4Tv2Config,
        SeamlessM4Tv2ForSpeechToText,
    )

    specials = ["<pad>", "<unk>", "<s>", "</s>", "__eng__", "__fra__"]
    vocab = {tok: i for i, tok in enumerate([*specials, "▁", *FRENCH_CHARS])}
    tokenizer = SeamlessM4TTokenizer(vocab=vocab, merges=[],
                                     additional_special_tokens=["__eng__", "__fra__"])
    config = SeamlessM4Tv2Config(
        vocab_size=len(vocab), hidden_size=32, speech_encoder_layers=1,
        speech_encoder_attention_heads=2, speech_encoder_intermediate_size=64,
        encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        adaptor_kernel_size=8, adaptor_stride=8, num_adapter_layers=1,
        t2u_encoder_layers=1, t2u_decoder_layers=1, t2u_encoder_attention_heads=2,
        t2u_decoder_attention_heads=2, t2u_encoder_ffn_dim=32, t2u_decoder_ffn_dim=32,
        t2u_vocab_size=16, unit_hifi_gan_vocab_size=16, max_position_embeddings=256,
        pad_token_id=0, bos_token_id=2, eos_token_id=3, decoder_start_token_id=3,
        initializer_range=0.5)
    torch.manual_seed(0)
    model = SeamlessM4Tv2ForSpeechToText(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=3, eos_token_id=3, pad_token_id=0, bos_token_id=2,
        max_length=64, text_decoder_lang_to_code_id={"eng": 4, "fra": 5})
    model.save_pretrained(folder)
    SeamlessM4TProcessor(SeamlessM4TFeatureExtractor(), tokenizer).save_pretrained(folder)
    return folder


# Gemma 3n's chat template, reduced to what ERT sends: user turns of audio and text parts.
# An audio part becomes the processor's audio token, which it expands to the clip's soft tokens.
GEMMA3N_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'audio' %}<audio_soft_token>"
    "{% elif item['type'] == 'image' %}<image_soft_token>{% elif item['type'] == 'text' %}"
    "{{ item['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


def _gemma3n_tokenizer(text_vocab: int, multimodal: list[str]):
    """A character-level tokenizer with Gemma's special tokens: ``text_vocab`` ids of text
    (characters, then two-letter pieces), the ``multimodal`` tokens above them."""
    from itertools import product

    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>",
                "<start_of_image>", "<start_of_audio>"]
    vocab = {token: i for i, token in enumerate(specials)}
    letters = "aeiolnrstu"
    for token in [*FRENCH_CHARS, *" .,?!\nTEFO", *("".join(p) for p in product(letters, letters))]:
        if len(vocab) < text_vocab:
            vocab.setdefault(token, len(vocab))
    for token in multimodal:
        vocab[token] = len(vocab)
    model = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    model.decoder = decoders.Fuse()
    model.add_special_tokens([AddedToken(t, special=True, normalized=False)
                              for t in specials + multimodal])
    return PreTrainedTokenizerFast(
        tokenizer_object=model, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", padding_side="left", extra_special_tokens={
            "image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>", "audio_token": "<audio_soft_token>",
            "boa_token": "<start_of_audio>", "eoa_token": "<end_of_audio>"})


def build_gemma3n(folder: Path) -> Path:
    """A 2-layer Gemma 3n (text decoder with AltUp, LAuReL and per-layer inputs, one
    conformer block in the audio tower, timm's ``test_efficientnet`` as vision tower),
    with the real audio feature extractor and a character tokenizer.

    The real vocabulary is 262,400 ids with the image and audio ranges above the text's;
    here the same layout in 272 ids (256 text, 8 vision, 8 audio), so the multimodal
    embedders and the audio placeholder ids are exercised as in the real model.
    """
    import torch
    from transformers import (
        Gemma3nAudioFeatureExtractor,
        Gemma3nConfig,
        Gemma3nForConditionalGeneration,
        Gemma3nProcessor,
        SiglipImageProcessor,
    )

    text, vision, audio = 256, 8, 8
    multimodal = (["<end_of_image>", "<image_soft_token>"]
                  + [f"<vision_{i}>" for i in range(vision - 2)]
                  + ["<end_of_audio>", "<audio_soft_token>"]
                  + [f"<audio_{i}>" for i in range(audio - 2)])
    tokenizer = _gemma3n_tokenizer(text, multimodal)
    ids = tokenizer.convert_tokens_to_ids
    config = Gemma3nConfig(
        text_config={
            "vocab_size": text + vision + audio, "vocab_size_per_layer_input": text,
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
            "hidden_size_per_layer_input": 8, "altup_num_inputs": 2, "laurel_rank": 4,
            "num_kv_shared_layers": 0, "sliding_window": 512, "max_position_embeddings": 1024,
            "activation_sparsity_pattern": [0.95, 0.0],
            "layer_types": ["sliding_attention", "full_attention"],
            # An output head of its own: tied to the embeddings, a random model's next token
            # is the one most like the last, whatever the audio.
            "tie_word_embeddings": False,
            "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": [1, ids("<end_of_turn>")]},
        audio_config={"vocab_size": audio, "vocab_offset": text + vision, "hidden_size": 32,
                      "input_feat_size": 128, "conf_num_attention_heads": 2,
                      "conf_num_hidden_layers": 1, "sscp_conv_channel_size": [8, 4]},
        vision_config={"vocab_size": vision, "vocab_offset": text, "hidden_size": 32,
                       "architecture": "test_efficientnet"},
        boi_token_id=ids("<start_of_image>"), eoi_token_id=ids("<end_of_image>"),
        image_token_id=ids("<image_soft_token>"), boa_token_id=ids("<start_of_audio>"),
        eoa_token_id=ids("<end_of_audio>"), audio_token_id=ids("<audio_soft_token>"),
        tie_word_embeddings=False)
    torch.manual_seed(2)  # a seed whose texts differ with the audio and the prompt
    Gemma3nForConditionalGeneration(config).save_pretrained(folder)
    Gemma3nProcessor(feature_extractor=Gemma3nAudioFeatureExtractor(),
                     image_processor=SiglipImageProcessor(), tokenizer=tokenizer,
                     chat_template=GEMMA3N_CHAT_TEMPLATE).save_pretrained(folder)
    return folder


def noise_clips(seconds: list[float], seed: int = 0) -> list[np.ndarray]:
    """Speech-band noise clips of the given lengths (random models need no words)."""
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * SAMPLE_RATE))).astype(np.float32)
            for s in seconds]


# --- random weights at real architectures' sizes (benchmarks, memory measurements) -----------

WHISPER_SIZES = {"tiny": (384, 4, 6), "base": (512, 6, 8), "small": (768, 12, 12),
                 "medium": (1024, 24, 16)}  # d_model, layers, heads
WHISPER_TIMESTAMPS = range(50364, 51865)  # <|0.00|> … <|30.00|> in the multilingual vocabulary


def build_whisper_sized(folder: Path, size: str = "small") -> Path:
    """A random Whisper of a real size (tiny … medium), multilingual vocabulary.

    Its generation config suppresses timestamp tokens: random weights would emit them as
    text, and transformers then decodes the window again from each one, so timings would
    follow how many it happened to emit.
    """
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    d_model, layers, heads = WHISPER_SIZES[size]
    config = WhisperConfig(vocab_size=51865, d_model=d_model, encoder_layers=layers,
                           decoder_layers=layers, encoder_attention_heads=heads,
                           decoder_attention_heads=heads, encoder_ffn_dim=4 * d_model,
                           decoder_ffn_dim=4 * d_model, num_mel_bins=80)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257,
        bos_token_id=50257, max_length=448, begin_suppress_tokens=[220, 50257],
        suppress_tokens=list(WHISPER_TIMESTAMPS))
    model.save_pretrained(folder)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80),
                     whisper_tokenizer()).save_pretrained(folder)
    return folder


def build_wav2vec2_large(folder: Path) -> Path:
    """A random Wav2Vec2-large CTC (1024 wide, 24 layers, layer norm: the French fine-tunes'
    architecture) with the tiny character vocabulary."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    build_wav2vec2(folder)  # the processor and vocabulary; the model is replaced
    config = Wav2Vec2Config(vocab_size=46, hidden_size=1024, num_hidden_layers=24,
                            num_attention_heads=16, intermediate_size=4096,
                            feat_extract_norm="layer", do_stable_layer_norm=True,
                            conv_bias=True, pad_token_id=0)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder
