"""Answers that hold up (issue 30): wrapped text, numbers in words, the kind and predicate of a
question, and the evidence quoted when a draft is refused. Examples of our own, fast embedder."""

from core.chat import NOT_IN_DOCUMENTS, Turn, finish_turn
from core.llm.generate import GenerationOptions
from core.rag.chunking import chunk_document, split_heading, split_sentences
from core.rag.evidence import select_evidence
from core.rag.followup import standalone
from core.rag.grounding import support
from core.rag.numbers import number_values
from core.rag.store import Chunk, Hit

from tests.rag.embedders import HashEmbedder

WORKSHOP = """CANAL ROW BICYCLE WORKSHOP

The workshop on Canal Row repairs about forty bikes a week. Repairs are
collected on Monday and returned on Thursday, the fourth day after
collection. A service takes fourteen minutes per wheel.

Prices
- A puncture costs 9 euros.
- A new chain with fitting costs
  22 euros.
"""
WORKSHOP_HIT = Hit(Chunk(0, "workshop.txt", 0, WORKSHOP), 0.7)
PRESS = Hit(Chunk(1, "press.md", 0, (
    "Lintel Press\nThe Lintel Press publishes twelve poetry books a year; its publisher, Maud "
    "Ferrier, has run the Lintel Press since 2015. The Lintel Press was founded in 1978 by "
    "the printer Oskar Lind.")), 0.7)
PISCINE = Hit(Chunk(2, "piscine.md", 0, (
    "Piscine des Aulnes > Horaires\nLa piscine des Aulnes ouvre à 7 h et ferme à 21 h. "
    "Une séance d'aquagym dure 45 minutes.")), 0.7)


def _turn(question: str, hits: list[Hit]) -> Turn:
    evidence = select_evidence(question, hits, HashEmbedder())
    return Turn(question, question, "documents", hits, evidence, [], GenerationOptions())


def test_hard_wrapped_text_splits_at_sentence_ends_with_its_list_items_and_heading_apart():
    title, body = split_heading(WORKSHOP)
    assert title == "CANAL ROW BICYCLE WORKSHOP"
    assert split_sentences(body) == [
        "The workshop on Canal Row repairs about forty bikes a week.",
        "Repairs are collected on Monday and returned on Thursday, the fourth day after "
        "collection.",
        "A service takes fourteen minutes per wheel.",
        "Prices",
        "A puncture costs 9 euros.",
        "A new chain with fitting costs 22 euros."]
    # A chunk that starts inside a wrapped paragraph has no heading to lose.
    assert split_heading("collected on Monday and returned on Thursday, the fourth day\nafter "
                         "collection.") == ("", "collected on Monday and returned on Thursday, "
                                                "the fourth day\nafter collection.")
    wrapped = "\n".join(f"Line {i} of a long wrapped paragraph that goes on and on." for i in
                        range(30))
    assert all(c.endswith(".") for c in chunk_document(wrapped, chunk_size=300))


def test_numbers_compare_by_value_in_digits_and_words_in_english_and_french():
    assert number_values("fourteen minutes") == number_values("14 minutes") == \
        number_values("quatorze minutes") == {"14"}
    assert number_values("three hundred and forty") == number_values("trois cent quarante") \
        == number_values("340") == {"340"}
    assert number_values("vingt-huit mille livres, 2,877 metres") == {"28000", "2877"}
    question = "How long does a service take per wheel at the Canal Row workshop?"
    assert support("A service takes 14 minutes per wheel.", question, [WORKSHOP_HIT]).grounded
    assert not support("A service takes 40 minutes per wheel.", question, [WORKSHOP_HIT]).grounded
    assert support("Une séance d'aquagym dure quarante-cinq minutes.",
                   "Combien de temps dure une séance d'aquagym à la piscine des Aulnes ?",
                   [PISCINE]).grounded
    # In evidence ranking too: the answer's "14" pulls up the sentence saying "fourteen".
    top = select_evidence(question, [WORKSHOP_HIT], HashEmbedder(), answer="14 minutes")[0]
    assert top.sentence == "A service takes fourteen minutes per wheel."


def test_grounding_refuses_an_answer_of_another_kind_or_one_the_predicates_clause_contradicts():
    day = "On which day are repaired bikes returned by the Canal Row workshop?"
    assert support("They are returned on Thursday.", day, [WORKSHOP_HIT]).grounded
    paraphrase = support("Repaired bikes are returned on the fourth day after collection.", day,
                         [WORKSHOP_HIT])
    assert not paraphrase.grounded and paraphrase.reason == "the answer names no day"
    collected = support("They are returned on Monday.", day, [WORKSHOP_HIT])
    assert not collected.grounded and "Thursday" in collected.reason
    founder = "Who founded the Lintel Press?"
    assert support("Oskar Lind founded it in 1978.", founder, [PRESS]).grounded
    publisher = support("Maud Ferrier founded the Lintel Press.", founder, [PRESS])
    assert not publisher.grounded and "Oskar Lind" in publisher.reason
    closing = "À quelle heure ferme la piscine des Aulnes ?"
    assert support("Elle ferme à 21 h.", closing, [PISCINE]).grounded
    assert not support("Elle ferme à 7 h.", closing, [PISCINE]).grounded


def test_evidence_ranks_the_sentence_with_the_predicate_above_one_sharing_the_subject():
    top = select_evidence("Who founded the Lintel Press?", [PRESS], HashEmbedder())[0]
    assert top.sentence.startswith("The Lintel Press was founded in 1978")
    top = select_evidence("When does the Canal Row workshop return repairs?", [WORKSHOP_HIT],
                          HashEmbedder())[0]
    assert "returned on Thursday" in top.sentence


def test_a_refused_draft_gives_way_to_the_evidence_that_answers_and_not_in_the_documents_else():
    question = "Who founded the Lintel Press?"
    answer = finish_turn(_turn(question, [PRESS]), "Maud Ferrier founded it.", HashEmbedder())
    assert answer.quoted and not answer.not_in_documents
    assert answer.answer == ("The documents say: «The Lintel Press was founded in 1978 by the "
                             "printer Oskar Lind.» (press.md, chunk 0)")
    assert answer.draft == "Maud Ferrier founded it." and "Oskar Lind" in answer.grounding
    assert answer.evidence[0].sentence.endswith("Oskar Lind.")
    assert [(s.file, s.chunk) for s in answer.sources] == [("press.md", 0)]
    # The model's own refusal gives way too, when a sentence answers.
    wheel = "How long does a service take per wheel at the Canal Row workshop?"
    refused = finish_turn(_turn(wheel, [WORKSHOP_HIT]), "The documents do not say.",
                          HashEmbedder())
    assert refused.quoted and "fourteen minutes per wheel" in refused.answer
    # Nothing retrieved is about the question: no quote, however near the sentences are.
    for absent, draft in (("Who fits the saddles at the Canal Row workshop?", "Maud Ferrier."),
                          ("Who designed the logo of the Lintel Press?", "Maud Ferrier.")):
        hits = [WORKSHOP_HIT, PRESS]
        answer = finish_turn(_turn(absent, hits), draft, HashEmbedder())
        assert answer.answer == NOT_IN_DOCUMENTS and not answer.quoted, absent
        assert answer.evidence == [] and answer.sources == []


def test_a_followup_becomes_a_grammatical_question_with_its_own_predicate():
    assert standalone("And when does it close?",
                      "What time does the Canal Row Workshop open on Saturdays?") == \
        "When does the Canal Row Workshop close?"
    assert standalone("And when does it close?",
                      "When does the Marsh Lane library open on Saturdays?") == \
        "When does the Marsh Lane library close?"  # a name inside the subject
    assert standalone("And where is it?", "Who is the director of the Marsh Lane library?") == \
        "Where is the Marsh Lane library?"
    assert standalone("And how much does it cost?",
                      "How long does the chain service take before a race?") == \
        "How much does the chain service cost?"
    assert standalone("Et à quelle heure ferme-t-elle ?",
                      "À quelle heure ouvre la piscine des Aulnes ?") == \
        "À quelle heure la piscine des Aulnes ferme-t-elle ?"
