"""Robustness conditions: each clip as a model hears it under noise, on a telephone line,
through a codec, in a room, at another speed, from a hot input or over a lossy network.

A condition is declared in a registry the user edits (``configs/conditions.toml``) with
the severities it may run at, and named ``noise:snr=10`` (``noise`` alone: every
severity). It is applied when a clip is read, so a run is one dataset expanded into
(clip, condition) work items (:func:`expand`, ids ``en_001@noise:snr=10``), and resume,
claims, the records' dedup and progress treat each as a sample. Everything random is drawn
from a generator seeded by the clip's id, the condition, its severity and the entry's
``seed``: every model, every worker and every rerun hears exactly the same audio. The
perturbed audio is made again for each model that reads it rather than stored: it costs a
few milliseconds of CPU per clip (BENCHMARKS.md), a cache would cost disk per condition.

Here are the registry, its parsing and the work items; the signal processing that turns a
clip into what is heard is :mod:`core.perturbations`, called with plain arguments.
"""

from __future__ import annotations

from core import paths, perturbations
from core.audio import SAMPLE_RATE, AudioError, is_audio_file
from core.datasets import Sample
from core.phrasing import MISSING
from core.registry_file import read_registry

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

CLEAN = "clean"  # the clip as it is
ALL = "all"  # every registry condition at every severity, and clean
SEPARATOR = "@"  # a work item's id: "<clip id>@<condition>"
SNR_RANGE = (-10.0, 60.0)
BABBLE_POOL = 32  # clips babble draws its talkers from (decoded once per worker)
ENTRY_FIELDS = frozenset({"kind", "severities", "description", "talkers", "noise_dir", "seed"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class ConditionError(ValueError):
    """A condition that cannot be run; the message is for the user, before anything runs."""


@dataclass(frozen=True)
class Kind:
    """What a kind of condition takes: its parameter's name, the values it accepts, and the
    FFmpeg encoder it needs."""

    parameter: str | None
    low: float = -math.inf
    high: float = math.inf
    unit: str = ""
    allowed: tuple[float, ...] = ()  # exact values only (AMR-NB's modes)
    encoder: str | None = None


_SNR = Kind("snr", *SNR_RANGE, unit="dB")
KINDS: dict[str, Kind] = {
    "white_noise": _SNR, "pink_noise": _SNR, "babble": _SNR, "noise_dir": _SNR,
    "telephone": Kind(None, encoder="pcm_mulaw"),
    "amr_nb": Kind("kbps", unit="kbit/s", encoder="libopencore_amrnb",
                   allowed=(4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2)),
    "opus": Kind("kbps", 6, 64, unit="kbit/s", encoder="libopus"),
    "mp3": Kind("kbps", 8, 160, unit="kbit/s", encoder="libmp3lame"),
    # Longer rooms take the image-source method minutes; shorter ones do not fit its rooms.
    "reverb": Kind("rt60", 0.1, 1.5, unit="s"),
    "speed": Kind("factor", 0.5, 2.0), "tempo": Kind("factor", 0.5, 2.0),
    "gain": Kind("db", -60, 40, unit="dB"),
    "clipping": Kind("percent", 0.01, 50, unit="%"),
    "packet_loss": Kind("percent", 0.01, 50, unit="%"),
}


def format_value(value: float) -> str:
    """A severity as it is written in a condition's name: ``10``, ``0.3``, ``4.75``."""
    return f"{value:g}"


@dataclass(frozen=True)
class ConditionSpec:
    """One ``[conditions.<name>]`` entry of the registry."""

    name: str
    kind: str
    severities: tuple[float, ...] = ()
    description: str = ""
    talkers: tuple[int, int] = (3, 6)  # babble: fewest and most clips mixed
    noise_dir: str | None = None
    seed: int = 0

    @property
    def parameter(self) -> str | None:
        return KINDS[self.kind].parameter


@dataclass(frozen=True)
class Condition:
    """A condition at one severity (``spec`` None: clean)."""

    spec: ConditionSpec | None = None
    value: float | None = None

    @property
    def label(self) -> str:
        """Its name everywhere (ids, records, results): ``clean``, ``telephone``,
        ``noise:snr=10``."""
        if self.spec is None:
            return CLEAN
        if self.value is None:
            return self.spec.name
        return f"{self.spec.name}:{self.spec.parameter}={format_value(self.value)}"

    def seconds(self, duration: float | None) -> float | None:
        """How long a clip of ``duration`` lasts under it (speed and tempo change it)."""
        if duration is None or self.spec is None or self.spec.kind not in ("speed", "tempo"):
            return duration
        return duration / float(self.value or 1.0)

    def apply(self, audio: np.ndarray, clip_id: str, pool: ClipPool | None = None,
              rate: int = SAMPLE_RATE) -> np.ndarray:
        """``audio`` (float32 mono at ``rate``) under this condition, the same for the same
        clip id every time. A failure (a noise file that cannot be read) is an
        :class:`AudioError`: that item fails, the run goes on."""
        if self.spec is None:
            return audio
        rng = np.random.default_rng(_seed(clip_id, self.label, self.spec.seed))
        try:
            out = _perturb(self.spec, self.value, np.asarray(audio, np.float32), rate, rng,
                           clip_id, pool)
        except (av.error.FFmpegError, ValueError) as exc:
            if isinstance(exc, AudioError):
                raise
            raise AudioError(f"{self.label}: {exc}") from exc
        return np.ascontiguousarray(out, dtype=np.float32)


def _seed(clip_id: str, label: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}\x00{clip_id}\x00{label}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _perturb(spec: ConditionSpec, value: float | None, audio: np.ndarray, rate: int,
             rng: np.random.Generator, clip_id: str, pool: ClipPool | None) -> np.ndarray:
    """The kind's perturbation with plain arguments: the severity, and what it mixes in,
    which comes from the run (babble's talkers from its clips, noise_dir's recordings as
    parsing checked them)."""
    kind, level = spec.kind, float(value or 0)
    if kind in ("white_noise", "pink_noise"):
        return perturbations.colored_noise(audio, rate, rng, kind.split("_")[0], level)
    if kind == "babble":
        if pool is None:
            raise AudioError("babble needs the run's other clips")
        low, high = spec.talkers
        talkers = pool.talkers(clip_id, int(rng.integers(low, high + 1)), rng)
        return perturbations.babble(audio, rate, rng, talkers, level)
    if kind == "noise_dir":
        return perturbations.recorded_noise(audio, rate, rng, noise_files(spec), level)
    if kind == "telephone":
        return perturbations.telephone(audio, rate)
    encoder = KINDS[kind].encoder
    if encoder in perturbations.CODEC_FORMATS:  # amr_nb, opus, mp3: at kbps
        return perturbations.codec(audio, rate, encoder, level)
    if kind == "reverb":
        return perturbations.reverb(audio, rate, rng, level)
    if kind in ("speed", "tempo"):
        factor = float(value or 1)
        return (perturbations.speed if kind == "speed" else perturbations.tempo)(
            audio, rate, factor)
    if kind == "gain":
        return perturbations.gain(audio, level)
    if kind == "clipping":
        return perturbations.clipping(audio, level)
    if kind == "packet_loss":
        return perturbations.packet_loss(audio, rate, rng, level)
    raise KeyError(kind)


# --- the registry ---------------------------------------------------------------------------


@dataclass
class ConditionRegistry:
    """The conditions a user may name, from one registry file."""

    path: Path
    specs: dict[str, ConditionSpec] = field(default_factory=dict)

    def parse(self, names: str | Sequence[str]) -> list[Condition]:
        """:func:`parse_conditions` against this registry."""
        return parse_conditions(names, self)


def load_conditions(path: str | Path | None = None) -> ConditionRegistry:
    """The registry at ``path`` (default ``configs/conditions.toml``, moved by
    ``ERT_CONFIG_DIR``); a malformed entry is refused with the file and entry named."""
    where = Path(path) if path else paths.config_file("conditions.toml")
    data = read_registry(where, "condition registry")
    entries = data.get("conditions") or {}
    if not isinstance(entries, dict):
        raise ConditionError(f"{where}: [conditions.<name>] entries expected")
    registry = ConditionRegistry(where)
    for name, entry in entries.items():
        registry.specs[name] = _spec(where, name, entry)
    return registry


def _spec(where: Path, name: str, entry: Any) -> ConditionSpec:
    def bad(why: str) -> ConditionError:
        return ConditionError(f"{where}: condition {name!r}: {why}")

    if not isinstance(entry, dict):
        raise bad("must be a table of fields")
    if not _NAME.match(name) or name in (CLEAN, ALL):
        raise bad("a name is lower-case letters, digits, '-' and '_', and not "
                  f"{CLEAN!r} or {ALL!r}")
    unknown = sorted(set(entry) - ENTRY_FIELDS)
    if unknown:
        raise bad(f"unknown fields {unknown} (known: {', '.join(sorted(ENTRY_FIELDS))})")
    kind_name = entry.get("kind")
    if kind_name not in KINDS:
        raise bad(f"kind {kind_name!r} is not one of {', '.join(KINDS)}")
    kind = KINDS[kind_name]
    raw = entry.get("severities", [])
    if not isinstance(raw, list) or not all(isinstance(v, int | float) and
                                            not isinstance(v, bool) for v in raw):
        raise bad("severities must be a list of numbers")
    if kind.parameter is None and raw:
        raise bad(f"a {kind_name} condition takes no severity")
    if kind.parameter is not None and not raw:
        raise bad(f"list its severities ({kind.parameter} values)")
    for value in raw:
        problem = _out_of_range(kind, float(value))
        if problem:
            raise bad(problem)
    talkers = entry.get("talkers", [3, 6])
    if (not isinstance(talkers, list) or len(talkers) != 2
            or not all(isinstance(t, int) for t in talkers)
            or not 1 <= talkers[0] <= talkers[1] <= BABBLE_POOL - 1):
        raise bad(f"talkers must be [fewest, most], 1 to {BABBLE_POOL - 1}")
    if kind_name == "noise_dir" and not entry.get("noise_dir"):
        raise bad("a noise_dir condition needs noise_dir = \"/folder/of/recordings\"")
    return ConditionSpec(name, kind_name, tuple(float(v) for v in raw),
                         str(entry.get("description", "")), (talkers[0], talkers[1]),
                         str(entry["noise_dir"]) if entry.get("noise_dir") else None,
                         int(entry.get("seed", 0)))


def _out_of_range(kind: Kind, value: float) -> str | None:
    """Why ``value`` is not a severity the kind can run at; None when it is."""
    unit = f" {kind.unit}" if kind.unit and kind.unit != "%" else kind.unit
    if kind.parameter == "snr" and not SNR_RANGE[0] <= value <= SNR_RANGE[1]:
        return (f"an SNR of {format_value(value)} dB is outside [{format_value(SNR_RANGE[0])}, "
                f"{format_value(SNR_RANGE[1])}] dB")
    if kind.allowed and not any(math.isclose(value, a) for a in kind.allowed):
        return (f"{kind.parameter}={format_value(value)} is not one of "
                f"{', '.join(format_value(a) for a in kind.allowed)}")
    if not kind.low <= value <= kind.high:
        return (f"{kind.parameter}={format_value(value)}{unit} is outside "
                f"[{format_value(kind.low)}, {format_value(kind.high)}]{unit}")
    return None


def parse_conditions(names: str | Sequence[str], registry: ConditionRegistry | None = None
                     ) -> list[Condition]:
    """The conditions ``names`` asks for (``"clean,noise:snr=10,telephone"`` or a list),
    each once, in order. ``name`` alone is every severity of it; ``all`` every condition of
    the registry and clean. Anything that cannot run is refused here, before a run starts:
    an unknown condition, parameter or severity, an SNR outside [-10, 60] dB, an encoder
    this PyAV build lacks, a ``noise_dir`` with no audio."""
    registry = registry or load_conditions()
    asked = [n.strip() for part in ([names] if isinstance(names, str) else names)
             for n in str(part).split(",") if n.strip()]
    out: dict[str, Condition] = {}
    for text in asked:
        for condition in _parse_one(text, registry):
            out.setdefault(condition.label, condition)
    for condition in out.values():
        if condition.spec is not None:
            _check_usable(condition.spec, registry.path)
    return list(out.values())


def _parse_one(text: str, registry: ConditionRegistry) -> list[Condition]:
    if text == CLEAN:
        return [Condition()]
    if text == ALL:
        return [Condition()] + [c for name in registry.specs
                                for c in _parse_one(name, registry)]
    name, _, setting = text.partition(":")
    spec = registry.specs.get(name)
    if spec is None:
        known = ", ".join([CLEAN, ALL, *registry.specs])
        raise ConditionError(f"unknown condition {name!r} (known: {known}; they are declared "
                             f"in {registry.path})")
    if not setting:
        return [Condition(spec, v) for v in spec.severities] or [Condition(spec)]
    example = (f"{spec.name}:{spec.parameter}={format_value(spec.severities[0])}"
               if spec.parameter and spec.severities else spec.name)
    parameter, equals, raw = setting.partition("=")
    if spec.parameter is None:
        raise ConditionError(f"{text}: {name} takes no severity (write {name})")
    if not equals or parameter.strip() != spec.parameter:
        raise ConditionError(f"{text}: {name} takes {spec.parameter} (e.g. {example})")
    try:
        value = float(raw)
    except ValueError:
        raise ConditionError(f"{text}: {raw!r} is not a number (e.g. {example})") from None
    problem = _out_of_range(KINDS[spec.kind], value)
    if problem:
        raise ConditionError(f"{text}: {problem}")
    declared = next((v for v in spec.severities if math.isclose(v, value)), None)
    if declared is None:
        raise ConditionError(
            f"{text}: {format_value(value)} is not one of {name}'s severities "
            f"({', '.join(format_value(v) for v in spec.severities)}); add it to "
            f"{registry.path} to run it")
    return [Condition(spec, declared)]


def _check_usable(spec: ConditionSpec, where: Path) -> None:
    encoder = KINDS[spec.kind].encoder
    if encoder is not None:
        try:
            av.codec.Codec(encoder, "w")
        except (av.error.FFmpegError, ValueError) as exc:
            raise ConditionError(
                f"{spec.name}: the FFmpeg bundled with PyAV {av.__version__} has no "
                f"{encoder} encoder, which the {spec.kind} condition needs ({exc})") from None
    if spec.kind == "noise_dir":
        noise_files(spec, where)


def noise_files(spec: ConditionSpec, where: Path | None = None) -> list[Path]:
    """The audio files under a ``noise_dir`` condition's folder, sorted; refused when there
    is none."""
    folder = Path(spec.noise_dir or "").expanduser()
    origin = f" (declared in {where})" if where else ""
    if not folder.is_dir():
        raise ConditionError(f"{spec.name}: noise_dir {folder} is not a folder{origin}")
    found = sorted(p for p in folder.rglob("*") if p.is_file() and is_audio_file(p))
    if not found:
        raise ConditionError(f"{spec.name}: noise_dir {folder} holds no audio file "
                             f"(.wav, .flac, .mp3, .ogg, …){origin}")
    return found


def split_label(label: str) -> tuple[str, str | None, float | None]:
    """A condition's label as (name, parameter, value), without the registry:
    ``noise:snr=10`` → ("noise", "snr", 10.0); ``telephone`` → ("telephone", None, None)."""
    name, _, setting = label.partition(":")
    parameter, _, raw = setting.partition("=")
    try:
        return name, parameter or None, float(raw) if raw else None
    except ValueError:
        return name, parameter or None, None


def item_id(clip_id: str, label: str) -> str:
    """A work item's id: the clip's own under clean (so clean results pair with runs without
    conditions), ``en_001@noise:snr=10`` otherwise."""
    return clip_id if label == CLEAN else f"{clip_id}{SEPARATOR}{label}"


def clip_of(row_id: str, label: str | None) -> str:
    """The clip a work item's id stands for (:func:`item_id` undone)."""
    suffix = f"{SEPARATOR}{label}"
    return row_id[:-len(suffix)] if label and label != CLEAN and row_id.endswith(suffix) \
        else row_id


# --- work items -----------------------------------------------------------------------------


@dataclass
class ConditionedSample(Sample):
    """A dataset sample heard under a condition: :meth:`load_audio` returns the perturbed
    audio, so whatever reads samples (the worker, its prefetcher, the batch-invariance
    check) reads what the model is to hear."""

    condition: str = CLEAN
    clip_id: str = ""
    perturbation: Condition = field(default_factory=Condition, repr=False, compare=False)
    pool: ClipPool | None = field(default=None, repr=False, compare=False)

    def load_audio(self, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
        audio = super().load_audio(sampling_rate)
        return self.perturbation.apply(audio, self.clip_id, self.pool, sampling_rate)


def condition_of(sample: Sample) -> str | None:
    """The condition a work item is heard under; None for a plain sample (a run without
    conditions)."""
    return sample.condition if isinstance(sample, ConditionedSample) else None


def expand(samples: Sequence[Sample], conditions: Sequence[Condition]) -> list[Sample]:
    """Every sample under every condition, clip by clip (a killed run has every condition
    of the clips it reached, so its degradation pairs stay whole). Babble draws its talkers
    from ``samples``; with too few of them it is refused here."""
    pool = None
    babble = [c.spec for c in conditions if c.spec is not None and c.spec.kind == "babble"]
    if babble:
        pool = ClipPool(samples)
        need = max(s.talkers[1] for s in babble) + 1
        if len(samples) < need:
            raise ConditionError(f"babble mixes up to {need - 1} other clips of the run; it "
                                 f"has {len(samples)} clip(s) (choose more samples, or lower "
                                 "talkers)")
    return [ConditionedSample(
        id=item_id(s.id, c.label), audio_filepath=s.audio_filepath, text=s.text,
        duration=c.seconds(s.duration), language=s.language, audio=s.audio,
        sampling_rate=s.sampling_rate, audio_bytes=s.audio_bytes, extra=s.extra,
        condition=c.label, clip_id=s.id, perturbation=c, pool=pool)
        for s in samples for c in conditions]


class ClipPool:
    """The run's clips babble draws talkers from: up to :data:`BABBLE_POOL` of them, chosen
    by a hash of their ids (so the same whatever order the dataset lists them in), decoded
    once per process; a clip that cannot be decoded is left out."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        ranked = sorted(samples, key=lambda s: hashlib.sha256(s.id.encode()).hexdigest())
        self._samples = ranked[:BABBLE_POOL + 1]  # one more: a clip never babbles over itself
        self._audio: dict[str, np.ndarray] | None = None

    def talkers(self, clip_id: str, count: int, rng: np.random.Generator) -> list[np.ndarray]:
        """``count`` other clips, drawn with ``rng``."""
        if self._audio is None:
            self._audio = {}
            for sample in self._samples:
                try:
                    self._audio[sample.id] = sample.load_audio()
                except AudioError:
                    continue
        others = sorted(i for i in self._audio if i != clip_id)[:BABBLE_POOL]
        if len(others) < count:
            raise AudioError(f"babble: {len(others)} readable clip(s) to mix, {count} needed")
        chosen = rng.choice(len(others), size=count, replace=False)
        return [self._audio[others[int(i)]] for i in chosen]


def choices(registry: ConditionRegistry) -> list[str]:
    """What a user may pick (the Evaluation page's multiselect): clean, all, each condition
    (every severity of it) and each condition at each severity."""
    out = [CLEAN, ALL]
    for spec in registry.specs.values():
        out.append(spec.name)
        out += [Condition(spec, v).label for v in spec.severities]
    return list(dict.fromkeys(out))


def describe(registry: ConditionRegistry) -> str:
    """The registry as ``ert evaluate --list-conditions`` prints it."""
    lines = [f"{CLEAN:14} the clip as it is"]
    for spec in registry.specs.values():
        kind = KINDS[spec.kind]
        levels = (f"{kind.parameter} = {', '.join(format_value(v) for v in spec.severities)}"
                  + (f" {kind.unit}" if kind.unit else "")) if kind.parameter else MISSING
        lines.append(f"{spec.name:14} {spec.kind:12} {levels:28} {spec.description}")
    lines.append(f"{ALL:14} every condition above at every severity, and clean "
                 f"(from {registry.path})")
    return "\n".join(lines)
