"""Telling a decoding loop from speech (the packed mode's guard)."""

from core.asr.runaway import is_runaway
from core.repetition import compression_ratio, longest_repeat


def test_a_phrase_looping_is_runaway():
    assert is_runaway("elle a joué " + "de la partie " * 10)
    assert is_runaway("mini-tama-tama " + "tama " * 8)


def test_ordinary_sentences_are_not_runaway():
    for text in ("The quick brown fox jumps over the lazy dog.",
                 "Il a vingt-deux ans et il habite à Lyon depuis 2019.",
                 "Non, non, non, je ne viendrai pas demain.",
                 "", "oui"):
        assert not is_runaway(text), text


def test_longest_repeat_counts_back_to_back_ngrams():
    assert longest_repeat(["a", "b", "a", "b", "a", "b", "c"]) == 3
    assert longest_repeat(["x", "y", "z"]) == 1
    assert compression_ratio("abc " * 50) > 2.4 > compression_ratio("the fox runs far away")
