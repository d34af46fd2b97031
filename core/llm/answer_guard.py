"""Keeping a small model's document answer on the rails while it streams.

Small instruct models fail in three recognisable ways on document questions:
they loop (a sentence said again and again), they invent a web link "for more
information", and they open by repeating the question. :class:`AnswerGuard`
sees the text as it is generated: it drops an echoed question, and stops the
generation at a loop or at a link the documents do not contain, cutting the
answer back to where it went wrong. It holds back the last few characters it
has seen, so a cut rarely has to take back text already shown.
"""

from __future__ import annotations

from core.repetition import first_repeated_ngram

import re
from dataclasses import dataclass

REPEAT_NGRAM = 6  # six words said twice is a loop in a short answer
HOLD_BACK = 24  # characters kept back while streaming (a link or loop may still show up)
_LINK = re.compile(r"(https?://|www\.)\S*", re.IGNORECASE)
_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _norm(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower()).strip()


@dataclass
class AnswerGuard:
    """Feed generated pieces in, get the text to show out; ``reason`` says why it stopped."""

    question: str
    context: str = ""
    raw: str = ""
    shown: int = 0
    reason: str | None = None
    echo_removed: bool = False

    def feed(self, piece: str) -> str:
        """Text now safe to show (may be empty); sets :attr:`reason` to stop generation."""
        self.raw += piece
        text = self.text()
        safe = text if self.reason else text[:max(self.shown, len(text) - HOLD_BACK)]
        if self._pending_echo():
            return ""
        return self._emit(safe)

    def flush(self) -> str:
        """The rest, once generation has ended."""
        return self._emit(self.text())

    def _emit(self, safe: str) -> str:
        out = safe[self.shown:] if len(safe) > self.shown else ""
        self.shown = max(self.shown, len(safe))
        return out

    def _pending_echo(self) -> bool:
        """Whether the answer so far could still be the question being repeated."""
        start = _norm(self.raw)
        return bool(start) and len(start) < len(_norm(self.question)) \
            and _norm(self.question).startswith(start)

    def _strip_echo(self, text: str) -> str:
        """The answer without a leading copy of the question ("Question: …?")."""
        question = _norm(self.question)
        if not question:
            return text
        lead = re.match(r"\s*(?:question\s*:\s*)?", text, re.IGNORECASE)
        body = text[lead.end() if lead else 0:]
        words = list(_WORD.finditer(body))
        for i, match in enumerate(words):
            so_far = _norm(body[:match.end()])
            if so_far == question:
                rest = body[match.end():].lstrip(" ?:.!-\n")
                self.echo_removed = True
                if words[i + 1:] or rest:
                    rest = re.sub(r"^(?:answer\s*:\s*)", "", rest, flags=re.IGNORECASE)
                return rest
            if not question.startswith(so_far):
                break
        return text

    def text(self) -> str:
        """The answer as it should read now: echo dropped, cut before a link or a loop."""
        text = self._strip_echo(self.raw)
        link = _LINK.search(text)
        if link and link.group(0).rstrip(".,)") not in self.context:
            self.reason = self.reason or "invented link"
            text = _cut_to_sentence(text, link.start())
        words = list(_WORD.finditer(text))
        repeat = first_repeated_ngram([_norm(w.group(0)) for w in words], REPEAT_NGRAM)
        if repeat is not None:
            self.reason = self.reason or "repetition"
            text = _cut_to_sentence(text, words[repeat].start())
        return text.rstrip() if self.reason else text


def _cut_to_sentence(text: str, at: int) -> str:
    """``text`` up to the last sentence end before ``at`` (or up to ``at`` if none)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, at)]
    return text[:ends[-1]] if ends else text[:at].rstrip(" ,;:(-")
