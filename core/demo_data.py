"""A small English and French demo dataset spoken by espeak-ng.

ERT must show an ASR evaluation end to end on a machine with no hub, so the
demo set is synthesised locally from fixed sentences: the same arguments
always give the same manifest, and a rerun reuses the wav files already
written. Robotic voices make WERs higher than on real speech; the set is for
trying the workbench, not for ranking models.
"""

from __future__ import annotations

from core import audio as audio_io
from core import paths
from core.files import temporary_sibling, write_atomic

import json
import os
import shutil
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "The weather was cold this morning, so I took a warm coat.",
        "Please turn off the lights when you leave the room.",
        "She has been learning to play the piano for three years.",
        "The train to London leaves from platform four.",
        "We are going to visit my grandmother next weekend.",
        "Could you send me the report before the meeting starts?",
        "The children played in the garden until it got dark.",
        "He forgot his keys at the office and had to go back.",
        "A cup of coffee in the morning helps me wake up.",
        "The museum is closed on Mondays and public holidays.",
        "They built a small wooden house near the lake.",
        "I would like to book a table for two people tonight.",
        "The new bridge will be finished by the end of the year.",
        "My brother works as a nurse in a large hospital.",
        "It started raining just as we arrived at the beach.",
        "The library has thousands of books about history.",
        "Do not forget to water the plants while I am away.",
        "The cat is sleeping on the chair next to the window.",
        "Our flight was delayed because of the storm.",
        "She wrote a long letter to her best friend from school.",
        "The market sells fresh fruit and vegetables every day.",
        "We need to buy bread, milk and eggs for breakfast.",
        "The teacher asked the students to read the first chapter.",
        "He runs in the park every evening after work.",
        "The company opened a new office in the city centre.",
        "Can you tell me how to get to the railway station?",
        "The soup is too hot, so let it cool for a minute.",
        "Last summer we travelled across the country by car.",
        "The doctor said that I should rest for a few days.",
        "This old clock belonged to my great grandfather.",
        "The river flows slowly through the quiet valley.",
        "I have never seen so many stars in the night sky.",
        "Please speak more slowly so that everyone can understand.",
        "The shop on the corner sells newspapers and sweets.",
        "Our neighbours are planting apple trees in their garden.",
        "The meeting has been moved to Thursday afternoon.",
        "He painted the kitchen walls a bright shade of yellow.",
        "The dog barked loudly when the postman came to the door.",
        "We watched a funny film and laughed all evening.",
        "The road along the coast offers beautiful views of the sea.",
    ),
    "fr": (
        "Il faisait froid ce matin, alors j'ai pris un manteau chaud.",
        "N'oubliez pas d'éteindre la lumière en quittant la pièce.",
        "Elle apprend à jouer du piano depuis trois ans.",
        "Le train pour Lyon part du quai numéro quatre dans dix minutes.",
        "Nous allons rendre visite à ma grand-mère le week-end prochain.",
        "Pourriez-vous m'envoyer le rapport avant le début de la réunion ?",
        "Les enfants ont joué dans le jardin jusqu'à la tombée de la nuit.",
        "Il a oublié ses clés au bureau et a dû y retourner.",
        "Une tasse de café le matin m'aide à me réveiller.",
        "Le musée est fermé le lundi et les jours fériés.",
        "Ils ont construit une petite maison en bois près du lac.",
        "Je voudrais réserver une table pour deux personnes ce soir.",
        "Le nouveau pont sera terminé avant la fin de l'année.",
        "Mon frère travaille comme infirmier dans un grand hôpital.",
        "Il a commencé à pleuvoir juste quand nous sommes arrivés à la plage.",
        "La bibliothèque possède des milliers de livres d'histoire.",
        "N'oublie pas d'arroser les plantes pendant mon absence.",
        "Le chat dort sur la chaise à côté de la fenêtre.",
        "Notre vol a été retardé à cause de l'orage.",
        "Elle a écrit une longue lettre à sa meilleure amie d'enfance.",
        "Le marché vend des fruits et des légumes frais tous les jours.",
        "Nous devons acheter du pain, du lait et des œufs pour le petit déjeuner.",
        "Le professeur a demandé aux élèves de lire le premier chapitre.",
        "Il court dans le parc tous les soirs après le travail.",
        "L'entreprise a ouvert un nouveau bureau en centre-ville.",
        "Pouvez-vous me dire comment aller à la gare la plus proche ?",
        "La soupe est trop chaude, laisse-la refroidir une minute.",
        "L'été dernier, nous avons traversé le pays en voiture.",
        "Le médecin m'a conseillé de me reposer quelques jours.",
        "Cette vieille horloge appartenait à mon arrière-grand-père.",
        "La rivière coule lentement à travers la vallée tranquille.",
        "Je n'ai jamais vu autant d'étoiles dans le ciel.",
        "Parlez plus lentement pour que tout le monde comprenne.",
        "La boutique du coin vend des journaux et des bonbons.",
        "Nos voisins plantent des pommiers dans leur jardin.",
        "La réunion a été déplacée à jeudi après-midi.",
        "Il a peint les murs de la cuisine en jaune vif pendant les vacances.",
        "Le chien a aboyé très fort quand le facteur est arrivé.",
        "Nous avons regardé un film drôle et nous avons ri toute la soirée.",
        "La route du littoral offre de belles vues sur la mer.",
    ),
}
VOICES = {"en": "en", "fr": "fr"}
MANIFEST_NAME = "manifest.jsonl"
# Slower than espeak's 175: clearer for ASR, and utterances of 3 s or more.
WORDS_PER_MINUTE = 130


class DemoDataError(RuntimeError):
    """The demo dataset cannot be generated (espeak-ng missing, bad arguments)."""


def espeak_binary() -> str:
    """The espeak-ng executable, or a :class:`DemoDataError` saying how to install it."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise DemoDataError("espeak-ng is not installed; install it with "
                            "`apt-get install espeak-ng` (`make setup` does)")
    return binary


def synthesize(text: str, language: str, sampling_rate: int = audio_io.SAMPLE_RATE, *,
               words_per_minute: int | None = WORDS_PER_MINUTE,
               word_gap: int | None = None) -> np.ndarray:
    """Speak ``text`` with espeak-ng and return float32 mono at ``sampling_rate``.

    espeak-ng writes 22.05 kHz; the wav comes through stdout and is resampled
    by :mod:`core.audio`, so no temporary file or sox call is needed.
    ``word_gap`` (in 10 ms) puts silence between words: with 4 the robotic voice
    is much clearer to Whisper tiny (9.5 % WER instead of 28 % on the tests'
    sentences); ``words_per_minute=None`` keeps espeak-ng's own speed.
    """
    voice = VOICES.get(language, language)
    try:
        command = [espeak_binary(), "-v", voice, "--stdout", text]
        if words_per_minute is not None:
            command[3:3] = ["-s", str(words_per_minute)]
        if word_gap is not None:
            command[3:3] = ["-g", str(word_gap)]
        result = subprocess.run(command, capture_output=True, check=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip()
        raise DemoDataError(f"espeak-ng failed for voice {voice!r}: {detail}") from exc
    return audio_io.load_audio(result.stdout, sampling_rate, name=f"espeak-ng {voice}")


def write_wav(path: Path, audio: np.ndarray, sampling_rate: int = audio_io.SAMPLE_RATE) -> None:
    """16-bit PCM mono, written to a temporary name first so a crash leaves no half file."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    tmp = temporary_sibling(path)
    with wave.open(str(tmp), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sampling_rate)
        handle.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def _wav_duration(path: Path) -> float | None:
    """The duration of a wav written here earlier, or None if it is unusable."""
    try:
        with wave.open(str(path), "rb") as handle:
            frames, rate = handle.getnframes(), handle.getframerate()
    except (OSError, EOFError, wave.Error):
        return None
    if rate != audio_io.SAMPLE_RATE or frames == 0:
        return None
    return frames / rate


@dataclass(frozen=True)
class Demo:
    """A demo set a first run can pick, with the bundled model that suits its clips (issue
    27: the one mixed set scored the English-only default on 3 clips of 10)."""

    label: str
    langs: tuple[str, ...]
    model: str  # the registry key a run of this demo starts with
    folder: str  # beside the runs
    note: str  # what it holds and what to expect

    def manifest(self) -> Path:
        return paths.runs_dir() / self.folder / MANIFEST_NAME


DEMOS: tuple[Demo, ...] = (
    Demo("Demo: English", ("en",), "faster-whisper:tiny.en", "demo-data",
         "40 English sentences spoken by espeak-ng, for the English-only tiny.en."),
    Demo("Demo: English + French", ("en", "fr"), "faster-whisper:base", "demo-en-fr",
         "40 English and 40 French sentences spoken by espeak-ng, for the multilingual base. "
         "Its French voice is hard for Whisper base: expect a French WER near 100 %, and a "
         "few clips where base repeats a phrase until its token limit (WER far above 100 %)."),
)
DEFAULT_DEMO = DEMOS[0]


def find_demo(label: str | None) -> Demo | None:
    """The demo of that label (the Evaluation page's dataset choice), None for another."""
    return next((demo for demo in DEMOS if demo.label == label), None)


def default_manifest() -> Path:
    """Where the demo set lives when no dataset is named: beside the runs."""
    return DEFAULT_DEMO.manifest()


def demo_ready(demo: Demo = DEFAULT_DEMO) -> bool:
    """Whether the demo's manifest exists and holds its languages (a ``demo-data`` folder
    from before issue 27 holds English and French: it is rewritten, its audio reused)."""
    try:
        lines = demo.manifest().read_text(encoding="utf-8").splitlines()
        return {json.loads(line).get("language") for line in lines if line.strip()} == \
            set(demo.langs)
    except (OSError, ValueError, AttributeError):
        return False


def ensure_demo(demo: Demo = DEFAULT_DEMO) -> Path:
    """The demo's manifest, generated on first use (80 clips take a few seconds)."""
    if not demo_ready(demo):
        make_demo_dataset(demo.manifest().parent, demo.langs)
    return demo.manifest()


def make_demo_dataset(
    out_dir: str | Path, langs: Sequence[str] = ("en", "fr"), count: int | None = None
) -> Path:
    """Write ``count`` utterances per language (all 40 when None) and return the manifest.

    Utterance ``i`` of a language is always sentence ``i`` of :data:`SENTENCES`,
    saved as ``audio/<lang>_<i>.wav``; existing files are reused. The manifest
    (``manifest.jsonl``, NeMo style with ``language``, relative paths) lists
    exactly the requested languages and counts.
    """
    unknown = [lang for lang in langs if lang not in SENTENCES]
    if unknown or not langs:
        raise DemoDataError(f"unknown demo language(s) {', '.join(unknown) or '(none)'}; "
                            f"choose among {', '.join(SENTENCES)}")
    if count is not None and not 0 < count <= min(len(SENTENCES[lang]) for lang in langs):
        limit = min(len(SENTENCES[lang]) for lang in langs)
        raise DemoDataError(f"--count must be between 1 and {limit} (per language)")
    out = Path(out_dir).expanduser()
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for lang in dict.fromkeys(langs):
        sentences = SENTENCES[lang][: count or None]
        for index, text in enumerate(sentences):
            sample_id = f"{lang}_{index:03d}"
            path = out / "audio" / f"{sample_id}.wav"
            seconds = _wav_duration(path)
            if seconds is None:
                audio = synthesize(text, lang)
                write_wav(path, audio)
                seconds = len(audio) / audio_io.SAMPLE_RATE
            rows.append({"id": sample_id, "audio_filepath": f"audio/{path.name}", "text": text,
                         "duration": round(seconds, 3), "language": lang})
    manifest = out / MANIFEST_NAME
    write_atomic(manifest, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return manifest
