"""The packed CPU decoder (core.llm.packed_decoder) against transformers on tiny random
Llama models."""

from core.llm import packed_decoder

import pytest
import torch


def _on_q4_grid(w: torch.Tensor) -> torch.Tensor:
    """Weights on a Q4_1-like grid (16 levels per group of 32), like a dequantized GGUF."""
    g = w.reshape(w.shape[0], -1, 32)
    lo = g.amin(-1, keepdim=True)
    step = (g.amax(-1, keepdim=True) - lo) / 15
    return (((g - lo) / step).round() * step + lo).reshape(w.shape)


def _on_q8_grid(w: torch.Tensor) -> torch.Tensor:
    g = w.reshape(w.shape[0], -1, 32)
    d = g.abs().amax(-1, keepdim=True) / 127
    return ((g / d).round() * d).reshape(w.shape)


def _tiny_llama(on_grid: bool = True, bias: bool = False, arch: str = "llama"):
    """A 2-layer model of SmolLM2's family (Llama) or Qwen2's (q/k/v biases)."""
    import transformers

    torch.manual_seed(0)
    shape = dict(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                 tie_word_embeddings=True, eos_token_id=2)
    if arch == "qwen2":
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**shape)).eval()
    else:
        config = transformers.LlamaConfig(**shape, attention_bias=bias)
        model = transformers.LlamaForCausalLM(config).eval()
    if on_grid:
        with torch.no_grad():
            for name, module in model.named_modules():
                if isinstance(module, torch.nn.Linear) and name != "lm_head":
                    module.weight.copy_(_on_q4_grid(module.weight))
                    if module.bias is not None:  # zero at init: make RoPE's reorder matter
                        module.bias.normal_(0, 0.5)
            model.model.embed_tokens.weight.copy_(_on_q8_grid(model.model.embed_tokens.weight))
    return model


def test_pack_linear_is_exact_on_gguf_grids_and_falls_back_to_int8_rows():
    torch.manual_seed(0)
    w = torch.randn(96, 64) * 0.05
    x = torch.randn(3, 64)
    for grid, kind in ((_on_q4_grid, "int4"), (_on_q8_grid, "int8g"), (lambda t: t, "int8")):
        weights = grid(w)
        packed = packed_decoder.pack_linear(weights)
        assert packed.kind == kind
        got = packed(x.to(torch.bfloat16)).float()
        want = x.to(torch.bfloat16).float() @ weights.T
        assert torch.allclose(got, want, atol=0.02, rtol=0.02), kind


def test_packed_projections_round_trip_through_safetensors(tmp_path):
    model = _tiny_llama(bias=True)
    decoder = packed_decoder.FastDecoder(model)
    path = tmp_path / "packed.safetensors"
    packed_decoder.save_packed(decoder.packed, path)
    loaded = packed_decoder.load_packed(path)
    assert loaded is not None and set(loaded) == set(decoder.packed)
    for name, packed in decoder.packed.items():
        assert loaded[name].kind == packed.kind
        assert torch.equal(loaded[name].weight, packed.weight)
        assert (loaded[name].bias is None) == (packed.bias is None)
    path.write_bytes(b"not safetensors")
    assert packed_decoder.load_packed(path) is None


@pytest.mark.parametrize(("arch", "bias"), [("llama", False), ("llama", True), ("qwen2", True)])
def test_fast_forward_matches_transformers_logits(arch, bias):
    model = _tiny_llama(bias=bias, arch=arch)
    decoder = packed_decoder.optimize_for_cpu(model)
    assert decoder is not None
    ids = torch.randint(0, 320, (12,))
    with torch.inference_mode():
        want = model(input_ids=ids[None]).logits[0]
        cache = decoder.new_cache(16)
        got = [decoder.forward(ids[:8], 0, cache)]  # prefill, then one token at a time
        got += [decoder.forward(ids[i:i + 1], i, cache) for i in range(8, 12)]
    got = torch.cat(got)
    assert torch.allclose(got, want[7:], atol=0.05, rtol=0.05)
    assert torch.equal(got.argmax(-1), want[7:].argmax(-1))


def test_fast_greedy_generation_matches_generate_and_stops_at_eos():
    model = _tiny_llama()
    decoder = packed_decoder.FastDecoder(model)
    ids = torch.randint(3, 320, (1, 6))
    with torch.inference_mode():
        want = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                              max_new_tokens=10, min_new_tokens=10, pad_token_id=2)
    got: list[int] = []
    result = decoder.generate(ids, 10, min_new_tokens=10, on_token=lambda t: got.append(int(t)))
    assert result.new_tokens == 10 and got == want[0, 6:].tolist()
    decoder.eos_ids = {got[0]}
    early: list[int] = []
    assert decoder.generate(ids, 10, on_token=lambda t: early.append(int(t))).new_tokens == 1
    stopped = decoder.generate(ids, 10, should_stop=lambda: True)
    assert stopped.new_tokens == 0


def test_disabled_or_unsupported_models_keep_generate(monkeypatch):
    model = _tiny_llama()
    monkeypatch.setenv("ERT_LLM_FAST", "0")
    assert packed_decoder.optimize_for_cpu(model) is None
    monkeypatch.setenv("ERT_LLM_FAST", "1")
    model.config.hidden_act = "gelu"
    assert "SiLU" in packed_decoder.unsupported_reason(model)
    assert packed_decoder.optimize_for_cpu(model) is None
