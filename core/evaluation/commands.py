"""The evaluation subcommands of ``ert``: analyze, evaluate, monitor and the menu.

They keep the seed scripts' flags (``resource_manager.py``,
``batch_evaluation.py``, ``memory_monitor.py``) and only parse, call
``core.evaluation`` and print.
"""

from __future__ import annotations

from core import paths
from core.evaluation.cli_report import print_report
from core.evaluation.config import RunConfig
from core.evaluation.memory_guard import GuardConfig, MemoryGuard

import argparse
import sys
import time
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  ert evaluate --auto --samples 30                 # plan and run every registry model
  ert evaluate --list-batches
  ert evaluate --batches batch_1_light --samples 20
  ert evaluate --models faster-whisper:tiny.en faster-whisper:base --dataset data/manifest.jsonl
  ert evaluate --resume 20261123-101500-ab12
  ert evaluate --models faster-whisper:tiny.en --conditions clean,noise:snr=10,telephone,reverb
"""


def _registry(args: argparse.Namespace) -> Any:
    from core.asr.registry import load_asr_registry

    return load_asr_registry(Path(args.registry) if getattr(args, "registry", None) else None)


def _ensure_dataset(spec: str | None) -> str:
    """No dataset named: the English demo set (it suits the default tiny.en), generated on
    first use."""
    if spec:
        return spec
    from core.demo_data import DEFAULT_DEMO, demo_ready, ensure_demo

    if not demo_ready(DEFAULT_DEMO):
        print(f"[ert] generating the demo dataset in {DEFAULT_DEMO.manifest().parent} "
              "(espeak-ng)")
    return str(ensure_demo(DEFAULT_DEMO))


def _config(args: argparse.Namespace, models: list[str], batches: list[str]) -> RunConfig:
    from core.asr.base import DecodeOptions
    from core.evaluation.shards import DeviceError, run_devices

    try:
        device, devices = run_devices(args.devices, args.device, args.cluster)
    except DeviceError as exc:
        raise SystemExit(f"ert evaluate: {exc}") from exc
    config = RunConfig(
        dataset=_ensure_dataset(args.dataset), models=models, batches=batches,
        samples=args.samples, seed=args.seed, device=device, dtype=args.dtype,
        budget_gb=args.budget_gb, out_dir=str(_out(args)), registry_path=args.registry,
        decode=DecodeOptions(language=args.language, beam_size=args.beam_size,
                             pack_short=args.pack_short,
                             no_speech_filter=args.no_speech_filter),
        tune_batch_size=not args.no_tune, max_batch_size=args.max_batch_size,
        guard=GuardConfig(threshold_pct=args.threshold, limit_gb=args.guard_limit_gb),
        use_cache=not args.no_cache, write_cache=not args.no_cache_write,
        retune=args.retune, check_batch_invariance=args.check_batch_invariance,
        slice_by=[c.strip() for c in (args.by or "").split(",") if c.strip()],
        all_languages=args.all_languages,
        baseline=args.baseline, devices=devices, cluster=args.cluster,
        replicas=None if args.replicas == "auto" else int(args.replicas),
        conditions=[c.strip() for c in (args.conditions or "").split(",") if c.strip()])
    try:
        config.resolve_conditions()  # an unknown condition or severity: said before any plan
    except ValueError as exc:
        raise SystemExit(f"ert evaluate: {exc}") from exc
    return config


def _out(args: argparse.Namespace) -> Path:
    """``--out``, else ``ERT_RUNS_DIR``, else ``runs/``: the pages read the same folder."""
    return Path(args.out) if args.out else paths.runs_dir()


def _print_machine() -> None:
    from core.system import read_machine

    m = read_machine()
    print(f"machine: {m.cpu_model}, {m.cpu_cores} cores · RAM {m.ram_available_gb:.1f} of "
          f"{m.ram_total_gb:.1f} GB free · swap {m.swap_used_gb:.1f}/{m.swap_total_gb:.1f} GB")
    for gpu in m.gpus:
        print(f"  GPU{gpu.index} {gpu.name}: {gpu.memory_free_gb:.1f} of "
              f"{gpu.memory_total_gb:.1f} GB free")
    if not m.gpus:
        print("  no GPU visible")


def _plan(args: argparse.Namespace, config: RunConfig) -> Any:
    from core.datasets import load_dataset_spec
    from core.evaluation.run_plan import plan_samples

    samples = load_dataset_spec(config.dataset, config.samples, config.seed)
    return plan_samples(config, _registry(args), samples)


def _all_models(args: argparse.Namespace) -> list[str]:
    return list(_registry(args).models)


class _ProgressBars:
    """The CLI's bars: one per model; with data-parallel workers, one per model and device.

    They follow the live status, which the runner polls: a model's last steps can end
    between two polls (a bar stopped at 11/17 on a run that did all 17), so a bar is set to
    what the records hold when its model gives way to the next and when the run ends."""

    def __init__(self, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir
        self.bars: dict[str, Any] = {}
        self.keys: dict[str, tuple[str, str | None]] = {}  # bar → (model, device)

    def __call__(self, status: dict[str, Any]) -> None:
        from tqdm import tqdm

        parallel = "shards" in status
        for part in status.get("shards") or [status]:
            model = part.get("model")
            if not model or part.get("total") is None:
                continue
            device = part.get("device") if parallel else None
            key = f"{model} · {device}" if device else model
            bar = self.bars.get(key)
            if bar is None:
                if not parallel:
                    self._settle([k for k, b in self.bars.items() if not b.disable])
                bar = self.bars[key] = tqdm(total=part["total"], desc=key, unit="sample",
                                            dynamic_ncols=True, position=len(self.bars)
                                            if parallel else None)
                self.keys[key] = (model, device)
            bar.n = part.get("done", 0)
            bar.set_postfix(batch=part.get("batch_size"), failed=part.get("failures", 0),
                            refresh=False)
            bar.refresh()

    def finish(self, run_dir: Path | None = None) -> None:
        """The run is over: every bar ends at the samples its model (on its device)
        recorded."""
        self.run_dir = run_dir or self.run_dir
        self._settle([k for k, b in self.bars.items() if not b.disable])

    def _settle(self, keys: list[str]) -> None:
        """Set these bars to their recorded counts and close them; a model that recorded
        every sample of the run fills its bars (data-parallel shares are not known ahead)."""
        if not keys:
            return
        from core.evaluation.run_dir import RunDir

        run = RunDir(self.run_dir) if self.run_dir else None
        rows = run.records().sample_rows() if run and run.has_records else []
        try:
            expected = int(run.read_manifest()["samples"]) if rows and run else 0
        except (OSError, ValueError, KeyError):
            expected = 0
        for key in keys:
            model, device = self.keys[key]
            mine = [r for r in rows if r["model"] == model]
            bar = self.bars[key]
            if device is not None:
                bar.n = sum(r.get("device") == device for r in mine)
                if expected and len(mine) >= expected:
                    bar.total = bar.n
            elif rows:
                bar.n = len(mine)
            bar.refresh()
            bar.close()


def _progress_printer(run_dir: Path | None = None) -> _ProgressBars:
    return _ProgressBars(run_dir)


def _run(args: argparse.Namespace, config: RunConfig) -> int:
    from core.evaluation import runner

    print(_plan(args, config).describe())
    bars = _progress_printer(config.run_dir)
    outcome = runner.start(config, progress=bars)
    bars.finish(outcome.run_dir)
    return print_report(outcome)


def cmd_analyze(args: argparse.Namespace) -> int:
    _print_machine()
    models = args.models or ([] if args.batches else _all_models(args))
    config = _config(args, models, args.batches or [])
    print(_plan(args, config).describe())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.evaluation import runner

    try:
        if args.list_conditions:
            from core.conditions import describe, load_conditions

            print(describe(load_conditions()))
            return 0
        if args.list_batches:
            registry = _registry(args)
            from core.asr.memory import need_gb

            for name, keys in registry.batches.items():
                need = sum(need_gb(registry.get(k), args.device, dtype=args.dtype) for k in keys)
                print(f"{name:22} {need:6.1f} GB  {', '.join(keys)}")
            return 0
        if args.resume:
            run_dir = runner.find_run(args.resume, _out(args))
            bars = _progress_printer(run_dir)
            outcome = runner.resume(run_dir, progress=bars)
            bars.finish(outcome.run_dir)
            return print_report(outcome)
        if args.analyze_only:
            return cmd_analyze(args)
        models = args.models or []
        if args.auto and not models and not args.batches:
            models = _all_models(args)
        if not models and not args.batches:
            return menu(args)
        return _run(args, _config(args, models, args.batches or []))
    except (runner.RunError, ValueError, FileNotFoundError) as exc:
        print(f"ert: {exc}", file=sys.stderr)
        return 2


def cmd_monitor(args: argparse.Namespace) -> int:
    """Stand-alone memory monitor: one line per sample, stats JSON on exit."""
    guard = MemoryGuard(GuardConfig(threshold_pct=args.threshold,
                                    log_interval_s=args.log_interval,
                                    check_interval_s=min(1.0, args.log_interval)),
                        on_log=lambda sample, notes: print(
                            sample.line() + "".join(f"  ⚠ {n}" for n in notes), flush=True))
    guard.start()
    started = time.monotonic()
    try:
        while args.duration is None or time.monotonic() - started < args.duration:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        guard.stop()
        out = _out(args) / f"memory_stats_{time.strftime('%Y%m%d_%H%M%S')}.json"
        print(f"memory statistics written to {guard.write_stats(out)}")
    return 0


def menu(args: argparse.Namespace) -> int:
    """The seed's interactive menu (``resource_manager.py`` with no flag)."""
    choices = {"1": "analyze the machine and show the plan", "2": "run all models",
               "3": "run chosen batches", "4": "quick test (5 samples)", "q": "quit"}
    while True:
        for key, text in choices.items():
            print(f"  {key}) {text}")
        try:
            answer = input("choice: ").strip().lower()
        except EOFError:
            return 0
        if answer == "1":
            cmd_analyze(args)
        elif answer == "2":
            return _run(args, _config(args, _all_models(args), []))
        elif answer == "3":
            registry = _registry(args)
            names = list(registry.batches)
            for i, name in enumerate(names, 1):
                print(f"  {i}) {name}: {', '.join(registry.batches[name])}")
            picked = input("batches (numbers, space-separated): ").split()
            chosen = [names[int(p) - 1] for p in picked if p.isdigit() and 0 < int(p) <= len(names)]
            if chosen:
                return _run(args, _config(args, [], chosen))
        elif answer == "4":
            args.samples = 5
            return _run(args, _config(args, ["faster-whisper:tiny.en", "faster-whisper:base"],
                                      []))
        elif answer in {"q", "quit", ""}:
            return 0


def _common(p: argparse.ArgumentParser) -> None:
    from core.asr.spec import DTYPES

    p.add_argument("--dataset", default=None,
                   help="manifest (.jsonl/.csv), folder, or hf:NAME[:CONFIG[:SPLIT]] "
                        "(default: the English espeak-ng demo set, for tiny.en, generated "
                        "on first use; `ert demo-data --out DIR` makes an English + French one)")
    p.add_argument("--samples", type=int, default=None, help="reproducible subset size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", nargs="+", metavar="ID", help="registry keys, e.g. whisper:tiny")
    p.add_argument("--batches", nargs="+", metavar="NAME", help="named batches of the registry")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: every visible GPU, one data-parallel worker each")
    p.add_argument("--devices", default=None, metavar="LIST",
                   help="data-parallel workers, one per device: cuda:0,cuda:2 picks GPUs; "
                        "cpu,cpu runs two CPU workers (they share each model's samples "
                        "as they go; one run folder, every sample once)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="run the workers as Ray tasks: local (Ray started on this machine), "
                        "auto (the cluster this machine joined), or HOST:PORT; the run folder "
                        "(--out) and the dataset must be on a path every node sees")
    p.add_argument("--replicas", choices=["auto", "1", "2"], default="auto",
                   help="workers per GPU (auto: two only where they fit and were measured "
                        "faster than one)")
    p.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="weights' dtype for transformers models (default auto: bfloat16 on a "
                        "CPU with native bf16 and on GPU, else float32; wins over the "
                        "registry's dtype)")
    p.add_argument("--budget-gb", type=float, default=None,
                   help="memory budget (default: 80%% of what is free)")
    p.add_argument("--out", default=None,
                   help="results folder (default: $ERT_RUNS_DIR, else runs/)")
    p.add_argument("--registry", default=None, help="ASR registry file (default: configs/)")
    p.add_argument("--language", default=None,
                   help="decode every sample in this language, e.g. fr (default: each "
                        "sample's own from the dataset, else detected)")
    p.add_argument("--all-languages", action="store_true",
                   help="run each model on every sample, even in languages its registry entry "
                        "does not list (default: those are skipped and not scored)")
    p.add_argument("--pack-short", action="store_true",
                   help="speed mode (faster-whisper): decode several short clips in one shared "
                        "30 s window; a clip's text then depends on its neighbours")
    p.add_argument("--no-speech-filter", action="store_true",
                   help="faster-whisper: clips in which the VAD finds no speech get an empty "
                        "transcript, not decoded (Whisper writes 'you' on silence); changes "
                        "what is measured, so off by default and recorded in the results")
    p.add_argument("--baseline", default=None, metavar="MODEL",
                   help="report every other model's WER change against this one, with a "
                        "95%% interval")
    p.add_argument("--beam-size", type=int, default=1)
    p.add_argument("--max-batch-size", type=int, default=None,
                   help="largest batch the tuner tries (default: 32 on CPU, 256 on GPU)")
    p.add_argument("--by", default=None, metavar="COLUMNS",
                   help="also report WER/CER per value of these manifest columns, e.g. "
                        "accent,gender (clip length, language and dataset always are)")
    p.add_argument("--conditions", default=None, metavar="LIST",
                   help="also hear every clip under these robustness conditions, e.g. "
                        "clean,noise:snr=10,telephone (a name alone: all its severities; "
                        "all: every one); declared in configs/conditions.toml, listed by "
                        "--list-conditions. One run: every model x every condition, the "
                        "same clips")
    p.add_argument("--no-tune", action="store_true", help="keep the batch size fixed")
    p.add_argument("--retune", action="store_true",
                   help="tune the batch size afresh (default: a repeated run of a model on the "
                        "same dataset follows the sizes the last one used, so every clip is "
                        "decoded alike)")
    p.add_argument("--check-batch-invariance", type=int, nargs="?", const=32, default=0,
                   metavar="N",
                   help="re-decode N clips per model (default 32) at batch size 1 and report "
                        "how many differ from their batched transcript, and the WER it makes")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor trust the transcription cache: every sample is "
                        "transcribed (and still written to the cache)")
    p.add_argument("--no-cache-write", action="store_true",
                   help="leave the transcription cache as it was")
    p.add_argument("--threshold", type=float, default=85.0, help="memory warning %% (default 85)")
    p.add_argument("--guard-limit-gb", type=float, default=None,
                   help="stop a model whose memory grows past this many GB")


def register(sub: Any) -> None:
    analyze = sub.add_parser(
        "analyze", help="show the machine, the strategy and the plan; run nothing",
        description="= resource_manager.py --analyze-only. Example: ert analyze --samples 30")
    _common(analyze)
    analyze.set_defaults(func=cmd_analyze)

    evaluate = sub.add_parser(
        "evaluate", help="evaluate ASR models in memory-aware batches",
        description="= resource_manager.py --auto / batch_evaluation.py", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(evaluate)
    evaluate.add_argument("--auto", action="store_true", help="plan and run (all models by "
                                                              "default)")
    evaluate.add_argument("--analyze-only", action="store_true", help="same as `ert analyze`")
    evaluate.add_argument("--list-batches", action="store_true", help="list named batches")
    evaluate.add_argument("--list-conditions", action="store_true",
                          help="list the robustness conditions and their severities")
    evaluate.add_argument("--resume", metavar="RUN_ID", help="continue a stopped run")
    evaluate.set_defaults(func=cmd_evaluate)

    monitor = sub.add_parser(
        "monitor", help="watch RAM, swap and GPU memory (= memory_monitor.py)",
        description="Example: ert monitor --threshold 75 --log-interval 15")
    monitor.add_argument("--threshold", type=float, default=85.0)
    monitor.add_argument("--log-interval", type=float, default=30.0, help="seconds per line")
    monitor.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    monitor.add_argument("--out", default=None,
                         help="where memory_stats_*.json go (default: $ERT_RUNS_DIR, else runs/)")
    monitor.set_defaults(func=cmd_monitor)
