"""The scoring normaliser: numbers in digits and words agree, real differences still count."""

from __future__ import annotations

from core import normalize as norm
from core.metrics import score_sample
from core.normalize import SpellingMapError, language_key, normalize, normalizer_info

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest


def same(ref: str, hyp: str, language: str) -> bool:
    """True when the whole scoring path counts no word error."""
    return score_sample(ref, hyp, language).wer == 0


# --- French ----------------------------------------------------------------------------


@pytest.mark.parametrize(("digits", "words"), [
    ("Il a 22 ans.", "il a vingt-deux ans"),
    ("Il a 22 ans.", "il a vingt deux ans"),
    ("21 jours", "vingt et un jours"),
    ("21 jours", "vingt-et-un jours"),
    ("80 euros", "quatre-vingts euros"),
])
def test_french_cardinal_digits_match_words(digits: str, words: str) -> None:
    assert same(digits, words, "fr")
    assert same(words, digits, "fr-FR")


@pytest.mark.parametrize("written", ["10 000", "10\u00a0000", "10\u202f000", "10.000"])
def test_french_thousands_with_any_separator_match_words(written: str) -> None:
    assert same(f"{written} personnes", "dix mille personnes", "fr")


def test_french_millions_join_only_three_digit_groups() -> None:
    assert normalize("1 234 567", "fr") == normalize(
        "un million deux cent trente-quatre mille cinq cent soixante-sept", "fr")
    assert normalize("12 34", "fr") == "douze trente quatre"  # not a thousands group
    assert normalize("2024 500", "fr") == "deux mille vingt quatre cinq cents"


def test_french_decimal_comma_matches_virgule() -> None:
    assert same("2,5 kilos", "deux virgule cinq kilos", "fr")
    assert same("3,14", "trois virgule quatorze", "fr")
    assert same("0,05", "zéro virgule zéro cinq", "fr")


@pytest.mark.parametrize(("digits", "words"), [
    ("le 1er étage", "le premier étage"),
    ("le 1ᵉʳ mai", "le premier mai"),
    ("la 1re fois", "la première fois"),
    ("la 1ère fois", "la première fois"),
    ("le 3e jour", "le troisième jour"),
    ("le 3ème jour", "le troisième jour"),
    ("le 3eme jour", "le troisième jour"),
    ("le 2nd tour", "le second tour"),
    ("la 2nde guerre", "la seconde guerre"),
    ("le 21e siècle", "le vingt et unième siècle"),
    ("les 1ers arrivés", "les premiers arrivés"),
])
def test_french_ordinal_digits_match_words(digits: str, words: str) -> None:
    assert same(digits, words, "fr")


def test_french_years_match_words() -> None:
    assert same("Né en 1998.", "né en mille neuf cent quatre-vingt-dix-huit", "fr")
    assert normalize("en 2024", "fr") == "en deux mille vingt quatre"


def test_french_percent_matches_pour_cent() -> None:
    assert same("50 % des votes", "cinquante pour cent des votes", "fr")
    assert same("50% des votes", "cinquante pour cent des votes", "fr")


def test_hyphens_are_spaces_on_both_sides() -> None:
    assert normalize("vingt-deux", "fr") == normalize("vingt deux", "fr") == "vingt deux"
    assert normalize("22", "fr") == "vingt deux"


@pytest.mark.parametrize(("ref", "hyp"), [
    ("22 ans", "vingt-trois ans"),
    ("le premier jour", "le deuxième jour"),
    ("le 1er jour", "le 2e jour"),
    ("2,5", "25"),
    ("10 000 personnes", "10 000 voitures"),
    ("21 jours", "vingt et une nuits"),
    ("50 %", "cinquante"),
])
def test_french_different_numbers_still_count_as_errors(ref: str, hyp: str) -> None:
    assert score_sample(ref, hyp, "fr").wer > 0


def test_french_apostrophes_and_elisions_agree() -> None:
    assert normalize("L’homme", "fr") == normalize("l'homme", "fr") == "l homme"
    assert normalize("aujourd’hui", "fr") == normalize("aujourd'hui", "fr") == "aujourd hui"
    assert same("C’est l’été", "c'est l'été", "fr")


def test_ligatures_become_two_letters() -> None:
    assert normalize("Le cœur, l’Œuvre", "fr") == normalize("le coeur, l'oeuvre", "fr")
    assert normalize("ex æquo", "fr") == "ex aequo"


def test_accents_are_kept_unless_stripped() -> None:
    assert normalize("À l'école, élève", "fr") == "à l école élève"
    assert score_sample("il a mangé", "il a mange", "fr").wer > 0
    assert normalize("À l'école, élève", "fr", strip_accents=True) == "a l ecole eleve"
    assert normalize("il a mangé", "fr", strip_accents=True) == normalize("il a mange", "fr")
    assert normalize("Straße", "de", strip_accents=True) == "straße"  # ß is a letter


# --- Spanish ---------------------------------------------------------------------------


@pytest.mark.parametrize(("digits", "words"), [
    ("Tiene 22 años.", "tiene veintidós años"),
    ("21 días", "veintiuno días"),
    ("10.000 personas", "diez mil personas"),
    ("10 000 personas", "diez mil personas"),
    ("1.234.567", "un millón doscientos treinta y cuatro mil quinientos sesenta y siete"),
    ("2,5 kilos", "dos coma cinco kilos"),
    ("en 1998", "en mil novecientos noventa y ocho"),
    ("en 2024", "en dos mil veinticuatro"),
    ("el 50 %", "el cincuenta por ciento"),
])
def test_spanish_numbers_in_digits_match_words(digits: str, words: str) -> None:
    assert same(digits, words, "es")
    assert same(words, digits, "es-ES")


@pytest.mark.parametrize(("digits", "words"), [
    ("el 1º", "el primero"),
    ("el 1.º", "el primero"),
    ("el 1°", "el primero"),
    ("la 1ª vez", "la primera vez"),
    ("la 1.ª vez", "la primera vez"),
    ("el 3.er piso", "el tercer piso"),
    ("el 1.er día", "el primer día"),
    ("la 21ª edición", "la vigésima primera edición"),
])
def test_spanish_ordinal_digits_match_words(digits: str, words: str) -> None:
    assert same(digits, words, "es")


@pytest.mark.parametrize(("ref", "hyp"), [
    ("22 años", "veintitrés años"),
    ("el 1º", "el segundo"),
    ("la 1ª", "el primero"),
    ("2,5", "25"),
    ("22 años", "22 días"),
])
def test_spanish_different_numbers_still_count_as_errors(ref: str, hyp: str) -> None:
    assert score_sample(ref, hyp, "es").wer > 0


# --- German, Italian, Portuguese -------------------------------------------------------


@pytest.mark.parametrize(("language", "digits", "words"), [
    ("de", "22 Jahre", "zweiundzwanzig Jahre"),
    ("de", "10.000 Menschen", "zehntausend Menschen"),
    ("de", "1000 Menschen", "tausend Menschen"),
    ("de", "2,5 Kilo", "zwei Komma fünf Kilo"),
    ("de", "50 %", "fünfzig Prozent"),
    ("de", "im Jahr 1998", "im Jahr neunzehnhundertachtundneunzig"),
    ("de", "am 3. Oktober", "am dritten Oktober"),
    ("de", "die 3. Klasse", "die dritte Klasse"),
    ("it", "22 anni", "ventidue anni"),
    ("it", "2,5 chili", "due virgola cinque chili"),
    ("it", "il 1° maggio", "il primo maggio"),
    ("it", "la 1ª volta", "la prima volta"),
    ("it", "il 50 %", "il cinquanta per cento"),
    ("pt", "22 anos", "vinte e dois anos"),
    ("pt", "2,5 quilos", "dois vírgula cinco quilos"),
    ("pt", "o 1º lugar", "o primeiro lugar"),
    ("pt", "10.000 pessoas", "dez mil pessoas"),
    ("pt", "50 %", "cinquenta por cento"),
    ("pt", "16 anos", "dezasseis anos"),
    ("pt-BR", "16 anos", "dezesseis anos"),
])
def test_other_romance_and_german_numbers_match_words(language: str, digits: str,
                                                      words: str) -> None:
    assert same(digits, words, language)


def test_german_number_at_sentence_end_stays_a_cardinal() -> None:
    assert normalize("Es waren 3. Dann ging er.", "de") == "es waren drei dann ging er"


def test_languages_without_number_rules_keep_digits() -> None:
    assert normalize("22 l’huis", "nl") == "22 l huis"


# --- English ---------------------------------------------------------------------------


@pytest.mark.parametrize(("british", "american"), [
    ("colour", "color"), ("analyse", "analyze"), ("organise", "organize"),
    ("theatre", "theater"),
])
def test_english_british_spellings_match_american(british: str, american: str) -> None:
    assert same(f"The {british} of it", f"the {american} of it", "en")


def test_english_still_distinguishes_different_words() -> None:
    assert score_sample("the colour red", "the collar red", "en").wer > 0


# --- the spelling map and the normaliser's identity ------------------------------------


@pytest.fixture
def fresh_spelling_map() -> Iterator[None]:
    """Clears the cached map and normalisers around a test that swaps the file."""
    norm.english_spelling_mapping.cache_clear()
    norm._normalizer.cache_clear()
    yield
    norm.english_spelling_mapping.cache_clear()
    norm._normalizer.cache_clear()


def test_english_spelling_map_comes_from_the_verified_package() -> None:
    mapping, source = norm.english_spelling_mapping()
    assert len(mapping) >= 1000 and mapping["colour"] == "color"
    path = Path(source)
    assert path.parts[-3:] == ("whisper", "normalizers", "english.json")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == norm.SPELLING_SHA256


def test_tampered_spelling_map_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          fresh_spelling_map: None) -> None:
    tampered = tmp_path / "english.json"
    tampered.write_text(json.dumps({"colour": "colour"}), encoding="utf-8")
    monkeypatch.setattr(norm, "spelling_file", lambda: tampered)
    with pytest.raises(SpellingMapError, match="refusing .*sha256"):
        norm.english_spelling_mapping()
    with pytest.raises(SpellingMapError):
        normalize("colour", "en")


def test_normalizer_info_is_json_and_tells_runs_apart() -> None:
    info = normalizer_info()
    assert json.loads(json.dumps(info)) == info
    assert info["version"] == norm.NORMALIZER_VERSION
    assert info["num2words"] == "0.5.14"
    assert info["english_spelling"]["sha256"] == norm.SPELLING_SHA256
    assert info["english_spelling"]["entries"] >= 1000
    assert info["english_spelling"]["source"].startswith("openai-whisper==")
    assert normalizer_info() == info
    assert normalizer_info(strip_accents=True) != info


@pytest.mark.parametrize(("language", "key"), [
    ("fr-FR", "fr"), ("fr_FR", "fr"), ("French", "fr"), ("es-ES", "es"), ("Spanish", "es"),
    ("de_DE", "de"), ("en-US", "en"), (None, None), ("", None),
])
def test_language_codes_and_names_map_to_one_key(language: str | None,
                                                 key: str | None) -> None:
    assert language_key(language) == key
