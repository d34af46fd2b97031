"""OpenAI-compatible response bodies (core.api.formats): each format from the model's segments,
SRT/VTT time stamps that a subtitle parser reads back."""

from __future__ import annotations

from core.api.formats import FORMATS, render
from core.asr.timing import Segment, Word

import datetime as dt
import re

import pytest
import srt

TEXT = "The quick brown fox jumps over the lazy dog."
SEGMENTS = [Segment(0.0, 1.5, "The quick brown fox", [Word("The", 0.0, 0.2),
                                                       Word("quick", 0.2, 0.6)]),
            Segment(1.9, 3.5, "jumps over the lazy dog.", [Word("jumps", 1.9, 2.3)])]


def _times(body: str) -> tuple[str, str]:
    start, end = re.search(r"^(\S+) --> (\S+)$", body, re.MULTILINE).groups()
    return start, end


def test_json_is_the_text_alone():
    assert render("json", TEXT, 3.2, "en") == ({"text": TEXT}, "application/json")


def test_text_is_plain_text():
    assert render("text", TEXT, 3.2, "en") == (TEXT, "text/plain")


def test_verbose_json_carries_the_model_segments_and_words_only_when_asked():
    body, media = render("verbose_json", TEXT, 3.21456, "fr", SEGMENTS)
    assert media == "application/json"
    assert body["task"] == "transcribe" and body["language"] == "fr"
    assert body["text"] == TEXT and body["duration"] == 3.215
    assert [(s["id"], s["start"], s["end"], s["text"]) for s in body["segments"]] == [
        (0, 0.0, 1.5, "The quick brown fox"), (1, 1.9, 3.5, "jumps over the lazy dog.")]
    assert "words" not in body
    with_words, _ = render("verbose_json", TEXT, 3.2, "fr", SEGMENTS, words=True)
    assert with_words["words"] == [{"word": "The", "start": 0.0, "end": 0.2},
                                   {"word": "quick", "start": 0.2, "end": 0.6},
                                   {"word": "jumps", "start": 1.9, "end": 2.3}]


def test_a_timed_format_without_segments_is_an_error_not_one_fake_segment():
    for fmt in ("verbose_json", "srt", "vtt"):
        with pytest.raises(ValueError, match="timed segments"):
            render(fmt, TEXT, 3.0, "en")


def test_srt_has_one_cue_per_segment_and_a_subtitle_parser_reads_it_back():
    body, media = render("srt", TEXT, 3.5, "en", SEGMENTS)
    assert media == "text/plain"
    assert body.startswith("1\n00:00:00,000 --> 00:00:01,500\nThe quick brown fox\n\n2\n")
    cues = list(srt.parse(body))
    assert [(c.index, c.start, c.end, c.content) for c in cues] == [
        (1, dt.timedelta(0), dt.timedelta(seconds=1.5), "The quick brown fox"),
        (2, dt.timedelta(seconds=1.9), dt.timedelta(seconds=3.5), "jumps over the lazy dog.")]


def test_vtt_has_its_header_and_dot_milliseconds():
    body, media = render("vtt", TEXT, 3.5, "en", SEGMENTS)
    assert media == "text/vtt"
    assert body.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nThe quick brown fox\n\n"
                           "00:00:01.900 --> 00:00:03.500\n")


@pytest.mark.parametrize(("seconds", "srt_stamp", "vtt_stamp"), [
    (0.0, "00:00:00,000", "00:00:00.000"),
    (0.0004, "00:00:00,000", "00:00:00.000"),  # rounds to the millisecond
    (0.0006, "00:00:00,001", "00:00:00.001"),
    (59.9996, "00:01:00,000", "00:01:00.000"),  # rounding carries into the minutes
    (61.25, "00:01:01,250", "00:01:01.250"),
    (3599.999, "00:59:59,999", "00:59:59.999"),
    (3600.0, "01:00:00,000", "01:00:00.000"),
    (3 * 3600 + 25 * 60 + 7.089, "03:25:07,089", "03:25:07.089"),
    (100 * 3600.0, "100:00:00,000", "100:00:00.000"),  # hours are not wrapped
])
def test_timestamps_are_hours_minutes_seconds_milliseconds(seconds, srt_stamp, vtt_stamp):
    one = [Segment(0.0, seconds, "x")]
    assert _times(render("srt", "x", seconds, None, one)[0]) == ("00:00:00,000", srt_stamp)
    assert _times(render("vtt", "x", seconds, None, one)[0]) == ("00:00:00.000", vtt_stamp)


def test_every_listed_format_renders():
    for fmt in FORMATS:
        body, media = render(fmt, TEXT, 1.0, "en", SEGMENTS)
        assert "fox" in (body if isinstance(body, str) else body["text"]), fmt
        assert media in {"application/json", "text/plain", "text/vtt"}


def test_an_unknown_format_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="json, text, verbose_json, srt, vtt"):
        render("docx", TEXT, 1.0, "en")
