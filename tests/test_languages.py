"""The one language table: every spelling of a language reduces to one ISO 639-1 key."""

from __future__ import annotations

from core import datasets, metrics, normalize
from core.languages import (
    BY_CODE,
    LANGUAGES,
    english_name,
    guess_language,
    iso639_3,
    language_key,
)

import re

import pytest


@pytest.mark.parametrize(("language", "key"), [
    ("en", "en"), ("en-US", "en"), ("English", "en"), ("anglais", "en"),
    ("fr_FR", "fr"), ("French", "fr"), ("français", "fr"), (" Français ", "fr"),
    ("Deutsch", "de"), ("español", "es"), ("italiano", "it"), ("português", "pt"),
    ("Dutch", "nl"), ("polish", "pl"),
    ("pt-BR", "pt"), ("zh_Hans", "zh"),
    ("xx-YY", "xx"), ("klingon", "klingon"),  # outside the table: still one key per spelling
    (None, None), ("", None), ("-", None),
])
def test_every_spelling_gives_one_key(language: str | None, key: str | None) -> None:
    assert language_key(language) == key


def test_the_table_is_consistent() -> None:
    codes = [language.code for language in LANGUAGES]
    assert len(codes) == len(set(codes)) and set(codes) == set(BY_CODE)
    names = [name for language in LANGUAGES
             for name in (language.english.lower(), *language.aliases)]
    assert len(names) == len(set(names)), "a name may point to one language only"
    for language in LANGUAGES:
        assert re.fullmatch(r"[a-z]{2}", language.code)
        assert re.fullmatch(r"[a-z]{3}", language.iso639_3)
        assert language_key(language.english) == language.code
        assert all(language_key(alias) == language.code for alias in language.aliases)


@pytest.mark.parametrize(("language", "code"), [
    ("fr", "fra"), ("en", "eng"), ("de", "deu"), ("pt-BR", "por"), ("French", "fra"),
    ("ar", "arb"), ("zh", "cmn"),  # Seamless's macrolanguage members
    ("fra", "fra"), ("xx", "xx"),  # already Seamless's, or unknown: passed through
])
def test_seamless_codes(language: str, code: str) -> None:
    assert iso639_3(language) == code


def test_english_names_for_prompts() -> None:
    assert english_name("fr") == "French"
    assert english_name("de-DE") == "German"
    assert english_name("ja") == "Japanese"
    assert english_name("xx") is None and english_name(None) is None


def test_every_caller_uses_the_same_key() -> None:
    assert metrics.language_key is language_key
    assert normalize.language_key is language_key
    # Hugging Face configs: a language name or code gives its key, anything else none
    assert datasets.language_from_config("dutch") == "nl"
    assert datasets.language_from_config("français") == "fr"
    assert datasets.language_from_config("clean") is None
    assert datasets.language_from_config("cmn_hans_cn") is None


def test_brazilian_portuguese_keeps_its_own_numbers() -> None:
    assert language_key("pt-BR") == "pt"
    assert normalize.normalize("16 anos", "pt-BR") == "dezesseis anos"
    assert normalize.normalize("16 anos", "pt") == "dezasseis anos"


@pytest.mark.parametrize(("texts", "language"), [
    (["Le chat est sur la table, n'est-ce pas ?"], "fr"),
    (["The cat sat on the mat and we walked to the park."], "en"),
    (["Der Hund ist nicht hier und wir gehen nach Hause."], "de"),
    (["El perro y yo vamos a la casa cuando hay sol."], "es"),
    (["O cão não está em casa, ele foi embora."], "pt"),
    (["Il gatto è sulla tavola e questo è molto bello."], "it"),
    (["De hond is niet hier, het is een mooie dag."], "nl"),
    (["Bonjour 22"], None),  # too little to tell
    (["Le chat est sur la table.", "The cat is on the table and the dog is under it."], None),
    ([], None),
])
def test_a_texts_language_is_guessed_only_on_clear_evidence(texts: list[str],
                                                            language: str | None) -> None:
    assert guess_language(texts) == language
