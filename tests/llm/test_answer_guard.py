"""The document-answer guard: loops, invented links and echoed questions stopped while streaming."""

from core.llm.answer_guard import AnswerGuard
from core.repetition import first_repeated_ngram


def _stream(guard: AnswerGuard, text: str, size: int = 3) -> str:
    shown = ""
    for i in range(0, len(text), size):
        shown += guard.feed(text[i:i + size])
        if guard.reason:
            break
    return shown + guard.flush()


def test_a_loop_is_stopped_and_cut_back_to_its_first_telling():
    guard = AnswerGuard("How many beds?")
    loop = "The hut has 48 beds. " + "The hut is open in summer and has a view. " * 6
    shown = _stream(guard, loop)
    assert guard.reason == "repetition"
    assert shown.startswith("The hut has 48 beds.") and shown.count("open in summer") <= 2
    assert guard.text() == "The hut has 48 beds. The hut is open in summer and has a view."


def test_an_invented_link_stops_generation_at_the_sentence_before_it():
    guard = AnswerGuard("Who runs the hut?", context="Thomas Brunet runs the hut.")
    shown = _stream(guard, "Thomas Brunet runs it. For more, visit https://example.com/hut now")
    assert guard.reason == "invented link"
    assert guard.text() == "Thomas Brunet runs it."
    assert "https" not in shown


def test_a_link_that_is_in_the_documents_is_kept():
    guard = AnswerGuard("Where to book?", context="Book at https://refuge.example.org today.")
    assert _stream(guard, "Book at https://refuge.example.org today.") == \
        "Book at https://refuge.example.org today."
    assert guard.reason is None


def test_an_echoed_question_is_dropped_before_it_is_shown():
    guard = AnswerGuard("Who founded Radio Vallée?")
    shown = _stream(guard, "Who founded Radio Vallée? Marc Delorme founded it in 1987.")
    assert shown == "Marc Delorme founded it in 1987."
    assert guard.echo_removed and guard.reason is None


def test_a_plain_answer_streams_unchanged():
    text = "The ferry Ondine can carry 620 passengers."
    assert _stream(AnswerGuard("How many passengers?"), text, size=1) == text


def test_first_repeated_ngram_finds_the_second_telling():
    words = list("abcdefxabcdef")
    assert first_repeated_ngram(words, 6) == 7
    assert first_repeated_ngram(list("aaaaaa"), 6) is None  # overlapping is no repeat
