"""Model families: what the memory estimate knows about each architecture.

A family (``whisper``, ``wav2vec2``…) is how a registry entry says which architecture its
weights are, so that a model can be planned before anything loads: its published sizes (for
a model whose config is not at hand), how its activations grow with its weights, with each
clip and with the clip's length. A new family is one :func:`register_family` call (here for
ERT's own, or in the backend's module that runs it); the backends that run it name it in
their ``families`` (:class:`core.asr.base.Backend`). The figures' sources are in
:mod:`core.asr.memory`, which applies them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """One architecture's memory model (see :func:`core.asr.memory.activation_allowance_gb`)."""

    name: str
    # Published parameter counts (millions), matched against the words of a model's key and
    # source; the last row is the default (the largest usual size, so an unknown model is
    # over- rather than under-estimated): ``(("tiny", 39), ("", 1550))``.
    published_params_m: tuple[tuple[str, float], ...]
    # Activation GB per GB of weights in the compute dtype, for a reference batch of 8 clips.
    activation_fraction: float
    # The share of the 30 s-clip allowance that does not shrink with shorter clips.
    length_fixed_share: float
    # GB one 30 s clip costs whatever the model's size, in bf16 compute (fp32: twice).
    activation_per_clip_gb: float = 0.0

    def __post_init__(self) -> None:
        if not self.published_params_m or self.published_params_m[-1][0]:
            raise ValueError(f"family {self.name!r}: the last published size must be the "
                             "default row ('', millions)")


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Declare ``family`` (a registry entry may then name it)."""
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") \
            from None


# Fitted and measured in core.asr.memory (its comments give each figure's source).
register_family(Family(
    "whisper", (("tiny", 39), ("base", 74), ("small", 244), ("medium", 769), ("large", 1550),
                ("", 1550)),
    activation_fraction=1.75, length_fixed_share=0.35))
# The French fine-tunes are all wav2vec2-large (XLSR-53 or VoxPopuli, 315M).
register_family(Family("wav2vec2", (("base", 95), ("large", 315), ("", 315)),
                       activation_fraction=4.4, length_fixed_share=0.0))
register_family(Family("seamless", (("medium", 1200), ("large", 2300), ("", 2300)),
                       activation_fraction=1.75, length_fixed_share=0.2))
# Raw counts, per-layer embeddings (2.0 / 2.3 B) and the vision and audio towers included, as
# transformers loads them (the "effective" 2B / 4B are less); its audio tower's cost is per clip.
register_family(Family("gemma3n", (("e2b", 5418), ("e4b", 7819), ("", 7819)),
                       activation_fraction=0.0, length_fixed_share=0.5,
                       activation_per_clip_gb=0.30))
