"""Which dtype a model's weights load in: the one decision, for the load and the estimate alike.

The backend that loads a model and the memory estimate the planner budgets with both
ask :func:`load_dtype`, so a plan's needs follow the dtype the model will really have.
The choice, strongest first: the run's ``--dtype``, the registry entry's ``dtype``, then
"auto": bf16 for transformers on a CPU where bf16 is also faster (AMX), else what the
backend class declares (``weight_dtypes``: fp32 for transformers on other CPUs, bf16 on
CUDA, which the backend turns into fp16 on GPUs without bf16). On a CPU with native
bf16 but no AMX (``avx512_bf16``) bf16 halves the weights but runs at 0.7–0.8× fp32's
speed (BENCHMARKS.md), so "auto" keeps fp32 there — unless the planner finds that only
the bf16 need fits the budget (:func:`bf16_fallback`), and then the plan says so.
Backends with fixed compute types (faster-whisper's int8 on the
CPU and fp16 on the GPU) ignore a request; a remote model has no weights here.
"""

from __future__ import annotations

from core import system
from core.asr.factory import backend_class
from core.asr.spec import DTYPES
from core.devices import CPU, device_kind, is_cpu

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.asr.spec import AsrModelSpec

AUTO = "auto"


def load_dtype(spec: AsrModelSpec, device: str = "cpu", requested: str = AUTO) -> str:
    """The dtype ``spec``'s weights load in on ``device``: "float32", "bfloat16", "float16",
    "int8", or "remote" for a served model.

    ``requested`` is the run's choice ("auto", "float32" or "bfloat16"); it wins over the
    registry entry's ``dtype``, which wins over the automatic choice.
    """
    if requested not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {requested!r}")
    backend = backend_class(spec.backend)
    if backend.remote:
        return "remote"
    kind = device_kind(device)
    declared = backend.weight_dtypes[kind]
    if not backend.dtype_choices:  # e.g. CTranslate2's int8/fp16 compute types
        return declared
    asked = requested if requested != AUTO else spec.dtype
    if asked in backend.dtype_choices:
        return asked
    if kind == CPU and "bfloat16" in backend.dtype_choices and system.cpu_has_fast_bf16():
        return "bfloat16"
    return declared


def bf16_fallback(spec: AsrModelSpec, device: str = "cpu", requested: str = AUTO) -> bool:
    """Whether a model that does not fit in its automatic dtype may be planned in bf16
    instead: "auto" asked, a CPU with native bf16, a backend that can load it."""
    backend = backend_class(spec.backend)
    return (requested == AUTO and spec.dtype == AUTO and is_cpu(device)
            and "bfloat16" in backend.dtype_choices and not backend.remote
            and load_dtype(spec, device) != "bfloat16" and system.cpu_has_bf16())
