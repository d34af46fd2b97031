"""The lean load ``ert chat`` uses when the packed decoder is the engine (the fallback where
onnxruntime-genai cannot build the model): the same prompt ids, logits and answers as the
full transformers load, without importing transformers."""

from core.llm import onnx_engine
from core.llm.generate import (
    GenerationOptions,
    TextPieces,
    encode_chat,
    logits_processors,
    stream_chat,
)
from core.llm.loader import load_llm

import pytest
import torch

pytestmark = pytest.mark.slow

CONVERSATION = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi  there, é ü 中文"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def loads(smollm):
    """The full and the lean load with the ONNX engine unavailable (the packed decoder's path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx_engine, "load", lambda *args, **kwargs: None)
        return load_llm(smollm.spec), load_llm(smollm.spec, need_model=False)


@pytest.fixture(scope="module")
def packed_only(loads):
    return loads[1]


def test_packed_only_load_answers_as_the_full_model_does(loads):
    smollm, packed_only = loads
    assert packed_only.model is None and packed_only.fast is not None and smollm.fast is not None
    assert torch.equal(encode_chat(packed_only, CONVERSATION)["input_ids"],
                       encode_chat(smollm, CONVERSATION)["input_ids"])
    assert torch.equal(packed_only.fast.rope, smollm.fast.rope)
    assert packed_only.fast.eos_ids == smollm.fast.eos_ids
    options = GenerationOptions(max_new_tokens=24, temperature=0.0, repetition_penalty=1.1)
    answers = ["".join(stream_chat(llm, CONVERSATION, options)) for llm in (packed_only, smollm)]
    assert answers[0] == answers[1] and "Paris" in answers[0]


@pytest.mark.parametrize("options", [
    GenerationOptions(temperature=0.0, repetition_penalty=1.3),
    GenerationOptions(temperature=0.7, top_p=0.9, repetition_penalty=1.1),
    GenerationOptions(temperature=1.0, top_p=1.0, repetition_penalty=1.0),
])
def test_logits_processors_do_what_transformers_processors_do(options):
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    want = LogitsProcessorList()  # what ERT built from transformers' classes before
    if options.repetition_penalty != 1.0:
        want.append(RepetitionPenaltyLogitsProcessor(options.repetition_penalty))
    if options.temperature > 0:
        if options.temperature != 1.0:
            want.append(TemperatureLogitsWarper(options.temperature))
        want.append(TopKLogitsWarper(40))
        if options.top_p < 1.0:
            want.append(TopPLogitsWarper(options.top_p))
    torch.manual_seed(0)
    ids, scores = torch.randint(0, 500, (1, 30)), torch.randn(1, 500) * 4
    got = logits_processors(options, top_k=40)(ids, scores.clone())
    assert torch.equal(got, want(ids, scores.clone()))
    assert logits_processors(GenerationOptions(temperature=0.0, repetition_penalty=1.0)) is None


def test_text_pieces_end_at_word_boundaries_and_add_up_to_the_text(packed_only):
    tokenizer = packed_only.tokenizer
    text = "The capital of France is Paris.\nIt lies on the Seine, 中文 too."
    ids = tokenizer.backend.encode(text, add_special_tokens=False).ids
    pieces = TextPieces(tokenizer)
    pieces.put(torch.tensor([[1, 2, 3]]))  # the prompt: skipped
    for token in ids:
        pieces.put(torch.tensor([token]))
    pieces.end()
    out = list(pieces)
    assert "".join(out) == text
    assert all(p.endswith((" ", "\n", "中", "文")) for p in out[:-1]), out
