"""Speech recognition: one backend interface, three engines, one registry.

``transformers`` runs Whisper, Wav2Vec2 CTC, SeamlessM4T and Gemma 3n;
``faster-whisper`` (CTranslate2) runs the bundled offline defaults; ``endpoint`` sends
clips to a served model (``ert serve`` or any OpenAI-compatible API). Models
are listed in ``configs/asr_models.toml``; :func:`create_backend` builds the
backend for one of them. Importing this package does not import torch.
"""

from core.asr.base import Backend, DecodeOptions, Transcript
from core.asr.factory import create_backend
from core.asr.registry import AsrRegistry, AsrRegistryError, load_asr_registry
from core.asr.spec import AsrModelSpec

__all__ = ["AsrModelSpec", "AsrRegistry", "AsrRegistryError", "Backend", "DecodeOptions",
           "Transcript", "create_backend", "load_asr_registry"]
