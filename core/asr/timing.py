"""Where in a clip each part of a transcript was said: segments and words.

A backend that can place its text in time yields :class:`Segment` s from
:meth:`core.asr.base.Backend.segments`, in order, in seconds from the start of
the clip; one that cannot raises :class:`TimestampsUnavailable` rather than
pretending the whole clip is one segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# What a backend can time: nothing, segments, or segments and words.
NONE, SEGMENT, WORD = "", "segment", "word"


class TimestampsUnavailable(ValueError):
    """The model cannot give the timestamps asked for; the message says which it can."""


def require(model: str, level: str, words: bool) -> None:
    """Raise :class:`TimestampsUnavailable` unless a model that times its text at ``level``
    can give the segments (and ``words``) asked for."""
    if level == NONE or (words and level != WORD):
        can = "no timestamps" if level == NONE else "segment timestamps only"
        raise TimestampsUnavailable(
            f"{model} cannot give {'word' if words else 'segment'} timestamps (it gives "
            f"{can}): ask for json or text, or use a Whisper or CTC model")


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class Segment:
    """``avg_logprob`` / ``no_speech_prob`` are the decoder's confidence where the engine
    reports it (faster-whisper: per ≤ 30 s decoding window, shared by the segments cut from
    it), None where it does not (transformers, CTC)."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


def text_of(segments: list[Segment]) -> str:
    """The transcript the segments spell, as one line."""
    return " ".join(s.text.strip() for s in segments if s.text.strip())


def shifted(segment: Segment, seconds: float) -> Segment:
    """The segment (and its words) ``seconds`` later: a piece's times made the file's (then
    :func:`clamp` them into the file, to the millisecond)."""
    return replace(segment, start=segment.start + seconds, end=segment.end + seconds,
                   words=[Word(w.word, w.start + seconds, w.end + seconds)
                          for w in segment.words])


def clamp(segment: Segment, duration: float, floor: float = 0.0) -> Segment:
    """Keep a segment (and its words) inside ``[floor, duration]`` and in order: a model may
    stamp past the audio it was given (Whisper's window is 30 s whatever the clip)."""
    def inside(value: float) -> float:  # to the millisecond, never past the end
        return min(round(min(max(float(value), floor), duration), 3), duration)

    start = inside(segment.start)
    words, last = [], start
    for word in segment.words:
        w_start = max(inside(word.start), last)
        w_end = max(inside(word.end), w_start)
        words.append(Word(word.word, w_start, w_end))
        last = w_end
    return replace(segment, start=start, end=max(inside(segment.end), last), words=words)


def group_words(words: list[Word], max_gap: float = 0.8, max_seconds: float = 12.0
                ) -> list[Segment]:
    """Segments of words (a CTC model's): a new one after a pause of ``max_gap`` seconds or
    once one would pass ``max_seconds`` — where a subtitle would break."""
    segments: list[Segment] = []
    for word in words:
        current = segments[-1] if segments else None
        if current is None or word.start - current.end > max_gap or \
                word.end - current.start > max_seconds:
            segments.append(Segment(word.start, word.end, word.word, [word]))
        else:
            current.words.append(word)
            current.end = word.end
            current.text += " " + word.word
    return segments
