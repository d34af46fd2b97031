"""OpenAI-compatible response bodies (core.api.formats): each format, SRT/VTT time stamps."""

from __future__ import annotations

from core.api.formats import FORMATS, render

import re

import pytest

TEXT = "The quick brown fox jumps over the lazy dog."


def _times(body: str) -> tuple[str, str]:
    start, end = re.search(r"^(\S+) --> (\S+)$", body, re.MULTILINE).groups()
    return start, end


def test_json_is_the_text_alone():
    assert render("json", TEXT, 3.2, "en") == ({"text": TEXT}, "application/json")


def test_text_is_plain_text():
    assert render("text", TEXT, 3.2, "en") == (TEXT, "text/plain")


def test_verbose_json_has_language_duration_and_one_segment_over_the_clip():
    body, media = render("verbose_json", TEXT, 3.21456, "fr")
    assert media == "application/json"
    assert body["task"] == "transcribe" and body["language"] == "fr"
    assert body["text"] == TEXT and body["duration"] == 3.215
    assert body["segments"] == [{"id": 0, "seek": 0, "start": 0.0, "end": 3.215,
                                 "text": TEXT}]


def test_verbose_json_without_a_language_says_none():
    body, _ = render("verbose_json", "", 0.0, None)
    assert body["language"] is None and body["segments"][0]["end"] == 0.0


def test_srt_is_one_numbered_cue_with_comma_milliseconds():
    body, media = render("srt", TEXT, 3.5, "en")
    assert media == "text/plain"
    assert body == f"1\n00:00:00,000 --> 00:00:03,500\n{TEXT}\n"


def test_vtt_has_its_header_and_dot_milliseconds():
    body, media = render("vtt", TEXT, 3.5, "en")
    assert media == "text/vtt"
    assert body == f"WEBVTT\n\n00:00:00.000 --> 00:00:03.500\n{TEXT}\n"


@pytest.mark.parametrize(("seconds", "srt", "vtt"), [
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
def test_timestamps_are_hours_minutes_seconds_milliseconds(seconds, srt, vtt):
    assert _times(render("srt", "x", seconds, None)[0]) == ("00:00:00,000", srt)
    assert _times(render("vtt", "x", seconds, None)[0]) == ("00:00:00.000", vtt)


def test_every_listed_format_renders():
    for fmt in FORMATS:
        body, media = render(fmt, TEXT, 1.0, "en")
        assert TEXT in (body if isinstance(body, str) else body["text"]), fmt
        assert media in {"application/json", "text/plain", "text/vtt"}


def test_an_unknown_format_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="json, text, verbose_json, srt, vtt"):
        render("docx", TEXT, 1.0, "en")
