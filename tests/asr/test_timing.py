"""Timed segments: kept inside the clip and in order; CTC words grouped where subtitles break."""

from __future__ import annotations

from core.asr.timing import Segment, Word, clamp, group_words


def test_clamp_keeps_a_segment_and_its_words_inside_the_clip_and_in_order():
    seg = clamp(Segment(-0.5, 31.0, "x", [Word("a", 2.0, 1.0), Word("b", 0.5, 40.0)]), 8.16975)
    assert (seg.start, seg.end) == (0.0, 8.16975)
    assert [(w.start, w.end) for w in seg.words] == [(2.0, 2.0), (2.0, 8.16975)]
    assert clamp(Segment(1.0, 2.0, "y"), 10.0, floor=3.0).start == 3.0  # never before the last


def test_ctc_words_are_grouped_at_pauses_and_at_a_maximum_length():
    words = [Word("le", 0.0, 0.2), Word("chat", 0.3, 0.6), Word("dort", 2.0, 2.4)]
    assert [(s.start, s.end, s.text) for s in group_words(words)] == [
        (0.0, 0.6, "le chat"), (2.0, 2.4, "dort")]
    many = [Word(str(i), i * 0.5, i * 0.5 + 0.4) for i in range(60)]
    segments = group_words(many, max_seconds=10.0)
    assert all(s.end - s.start <= 10.0 for s in segments) and len(segments) == 3
    assert [w for s in segments for w in s.words] == many
