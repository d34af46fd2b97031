"""Evidence sentences, grounding and follow-up rewriting: the rules behind a trustworthy answer."""

from core.rag.evidence import select_evidence, split_sentences
from core.rag.followup import is_followup, standalone
from core.rag.grounding import support
from core.rag.store import Chunk, Hit

from tests.rag.embedders import HashEmbedder

OBSERVATORY = Hit(Chunk(0, "observatory.md", 0, (
    "Pic Sauvage Observatory > Location\nThe observatory stands on a rocky summit. The dome sits "
    "at an altitude of 2,877 metres. The present director is Dr. Lucie Ferrand.")), 0.8)
TRAIL = Hit(Chunk(1, "trail.md", 0, (
    "Crête des Aiguilles trail > Route\nThe highest point of the route is the Col du Loup.")), 0.4)
RADIO = Hit(Chunk(2, "radio.md", 1, (
    "Radio Vallée > Programmes\nThe station broadcasts on nineteen channels. The morning show "
    "starts at 6:30 and is presented by Sonia Kaddour.")), 0.7)
FERRY = Hit(Chunk(3, "ferry.md", 2, (
    "The Lake Ferry > Tickets\nA single adult ticket costs 18 francs. The service runs every two "
    "hours.")), 0.47)


def test_sentences_split_at_ends_not_at_titles_initials_or_decimals():
    assert split_sentences("Director is Dr. Lucie Ferrand. It is 2.5 km away! J. R. Smith came."
                           "\nA new line") == ["Director is Dr. Lucie Ferrand.",
                                               "It is 2.5 km away!", "J. R. Smith came.",
                                               "A new line"]
    assert split_sentences("It is kept at 19 °C. Backups run on Sunday.") == [
        "It is kept at 19 °C.", "Backups run on Sunday."]


def test_evidence_quotes_the_sentence_with_the_fact_verbatim():
    evidence = select_evidence("What is the altitude of the dome?", [OBSERVATORY, TRAIL],
                               HashEmbedder())
    assert evidence[0].sentence == "The dome sits at an altitude of 2,877 metres."
    assert (evidence[0].file, evidence[0].chunk) == ("observatory.md", 0)
    assert all(e.sentence in OBSERVATORY.chunk.text + TRAIL.chunk.text for e in evidence)
    assert not any(e.sentence.startswith("Pic Sauvage Observatory >") for e in evidence)


def test_the_answer_pulls_its_own_sentence_to_the_top():
    question = "Who presents the morning show?"
    after = select_evidence(question, [RADIO], HashEmbedder(), answer="Sonia Kaddour.")
    assert "Sonia Kaddour" in after[0].sentence


def test_grounding_accepts_a_fact_from_a_passage_about_the_question():
    ok = support("The observatory is at an altitude of 2,877 meters.",
                 "At what altitude is the Pic Sauvage Observatory?", [OBSERVATORY])
    assert ok.grounded and ok.chunk is OBSERVATORY
    spelled = support("Radio Vallée broadcasts on 19 channels.",
                      "How many channels does Radio Vallée broadcast on?", [RADIO])
    assert spelled.grounded  # "19" is the document's "nineteen"
    assert support("It starts at 6:30 AM.", "When does the morning show on Radio Vallée start?",
                   [RADIO]).grounded


def test_grounding_rejects_a_neighbours_fact_an_invented_one_and_an_empty_answer():
    borrowed = support("The Col du Loup is at 2,877 metres.", "What is the altitude of the Col du "
                       "Loup?", [OBSERVATORY, TRAIL])
    assert not borrowed.grounded and "2877" in borrowed.reason
    other_ticket = support("A ticket costs 18 francs.",
                           "How much does a ticket for the night tour cost?", [FERRY])
    assert not other_ticket.grounded
    invented = support("Radio Vallée uses 42 MHz.", "What frequency does Radio Vallée use?",
                       [RADIO])
    assert not invented.grounded
    assert not support("The captain of the ferry Ondine is the person who runs the ferry "
                       "Ondine.", "Who is the captain of the ferry Ondine?", [FERRY]).grounded


def test_followups_are_rewritten_from_the_previous_question():
    assert standalone("And in which year was it built?",
                      "How many passengers can the ferry Ondine carry?") == \
        "In which year was the ferry Ondine built?"
    assert standalone("And who presents it?",
                      "What time does the morning show on Radio Vallée start?") == \
        "Who presents the morning show on Radio Vallée?"
    assert standalone("And when was it founded?",
                      "Who is the director of the Pic Sauvage Observatory?") == \
        "When was the Pic Sauvage Observatory founded?"
    assert standalone("Et quand ouvre-t-il ?", "Combien de membres a la coopérative ?") == \
        "Quand ouvre-t-il ? (Combien de membres a la coopérative ?)"


def test_a_standalone_question_is_left_alone():
    question = "How many beds does the Refuge des Aiguilles have?"
    assert not is_followup(question)
    assert standalone(question, "Who founded Radio Vallée?") == question
    assert standalone("And when does it open?", None) == "And when does it open?"
