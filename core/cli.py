"""``ert``: the project's one command line (also ``python -m core``).

Each subcommand is a thin shell over a ``core`` function; run ``ert <command> --help``.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before anything heavy)
from core.phrasing import plural

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.scoring import FolderRows, LanguageChoice

Handler = Callable[[argparse.Namespace], int]


def _models_verify(args: argparse.Namespace) -> int:
    from core import bundled

    failures = 0
    for name, model in bundled.BUNDLED.items():
        if model.optional and not bundled.available(name):
            print(f"--    {name}: optional, not installed (make models-extra)")
            continue
        try:
            print(f"ok    {name}: {bundled.locate(name)}")
        except bundled.BundledModelError as exc:
            failures += 1
            print(f"FAIL  {name}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def _chat(args: argparse.Namespace) -> int:
    from core.llm.loader import first_use_note, load_llm, quiet_progress_bars

    quiet_progress_bars()  # before anything imports transformers
    from core.chat import NO_CONTEXT_NOTE, DocumentOptions, answer_question
    from core.llm.generate import GenerationOptions
    from core.llm.registry import load_registry

    import json
    from dataclasses import replace

    collection = embedder = None
    if args.collection:
        from core.rag.embeddings import load_embeddings
        from core.rag.store import Collection

        collection, embedder = Collection(args.collection), load_embeddings()
    spec = load_registry().get(args.model)
    if note := first_use_note(spec, args.device):
        print(note, file=sys.stderr)
    llm = load_llm(spec, device=args.device, need_model=False)
    options = DocumentOptions(k=args.k)
    if args.max_new_tokens:
        options = replace(options, max_new_tokens=args.max_new_tokens)
    chat_options = GenerationOptions(max_new_tokens=args.max_new_tokens or 200,
                                     temperature=args.temperature)
    # A document answer is checked against the documents before it is shown: streaming it
    # would print a draft that may then be refused. The model alone streams as it writes.
    streams = not args.json and not (collection is not None and len(collection))
    echo = (lambda piece: print(piece, end="", flush=True)) if streams else None
    answer = answer_question(llm, args.question, collection, embedder, options=options,
                             chat_options=chat_options, on_piece=echo)
    if args.json:
        print(json.dumps({"model": spec.key, **answer.as_dict()}, ensure_ascii=False, indent=2))
        return 0
    print("" if streams else answer.answer, flush=True)
    if answer.draft:
        print(f"draft (not grounded{': ' + answer.grounding if answer.grounding else ''}): "
              f"{answer.draft}", file=sys.stderr)
    if answer.mode == "model" and collection is not None:
        print(f"({NO_CONTEXT_NOTE})", file=sys.stderr)
    for item in answer.evidence:
        print(f"  evidence: {item.file} · chunk {item.chunk} · {item.score:.2f}: {item.sentence}",
              file=sys.stderr)
    for source in answer.sources:
        print(f"  source: {source.label()}", file=sys.stderr)
    print(f"({plural(answer.tokens['generated'], 'token')}, "
          f"{answer.timing['tokens_per_second']:.1f} tok/s)", file=sys.stderr)
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from core.llm.loader import quiet_progress_bars

    quiet_progress_bars()
    from core.rag.embeddings import load_embeddings
    from core.rag.ingest import IngestProgress, ingest
    from core.rag.store import Collection

    from pathlib import Path

    from tqdm import tqdm

    collection = Collection(args.collection)
    embedder = load_embeddings()
    sources = []
    for file in args.files:
        path = Path(file)
        size = path.stat().st_size if path.is_file() else 0
        sources.append((path.name, path.read_bytes, size))
    # On stderr, whatever TQDM_DISABLE says (quiet_progress_bars sets it for library bars).
    with tqdm(total=0, unit="chunk", file=sys.stderr, disable=False, dynamic_ncols=True) as bar:
        def show(progress: IngestProgress) -> None:
            bar.total = progress.chunks_expected
            bar.set_description_str(progress.current or "done", refresh=False)
            bar.update(progress.chunks_done - bar.n)

        result = ingest(collection, sources, embedder, on_progress=show)
    for name, added in result.added.items():
        print(f"{name}: {plural(added, 'chunk')}")
    for error in result.errors:
        print(f"skipped: {error}", file=sys.stderr)
    return 1 if result.errors else 0


def _demo_data(args: argparse.Namespace) -> int:
    from core.demo_data import DemoDataError, make_demo_dataset

    try:
        manifest = make_demo_dataset(args.out, langs=args.lang, count=args.count)
    except DemoDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(manifest)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from core.api.app import serve
    from core.api.settings import ServeSettings

    settings = ServeSettings(
        host=args.host, port=args.port, device=args.device, max_upload_mb=args.max_upload_mb,
        budget_gb=args.budget_gb, batching=not args.no_batching,
        batch_window_ms=args.batch_window_ms, max_batch=args.max_batch,
        queue_size=args.queue_size, registry_path=args.registry, default_model=args.model,
        model_ttl=args.model_ttl)
    if args.api_key:
        settings.api_key = args.api_key
    serve(settings)
    return 0


def _score(args: argparse.Namespace) -> int:
    from core import error_anatomy, robustness, slices
    from core.analysis import analysis_of, hallucination_lines
    from core.normalize import normalizer_info
    from core.scoring import (
        PredictionsError,
        default_baseline,
        read_many,
        render_table,
        score_predictions,
    )

    import json
    from pathlib import Path

    try:
        folder_rows, folder_baseline = _run_folder_readers(args.paths)
        predictions, choices = read_many(args.paths, args.language, folder_rows)
        for choice in choices:
            _say_language(choice)
        baseline = args.baseline or default_baseline(args.paths, folder_baseline)
        scores = score_predictions(predictions, baseline, args.strip_accents)
        report = analysis_of(predictions, scores, _columns(args.by), baseline)
        if args.write:
            from core.evaluation.runner import RunError, rescore

            for path in args.paths:
                if not Path(path).is_dir():
                    raise PredictionsError(f"--write rewrites run folders; {path} is a file")
                try:
                    written = rescore(Path(path), args.strip_accents)
                except RunError as exc:
                    raise PredictionsError(str(exc)) from exc
                print(f"rewrote {written['consolidated']}", file=sys.stderr)
    except PredictionsError as exc:
        print(f"ert score: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"normalizer": normalizer_info(args.strip_accents),
                          "baseline": baseline,
                          "sources": [str(p) for p in args.paths],
                          "language_sources": [c.to_dict() for c in choices],
                          "models": [s.to_dict() for s in scores.values()],
                          "analysis": report},
                         indent=2, ensure_ascii=False))
    else:
        print(render_table(scores))
        print(hallucination_lines(report))
        if report.get("conditions"):
            print("\n" + robustness.render(report["conditions"]))
        if args.by:
            print("\n" + slices.render([slices.SliceRow(**r) for r in report["slices"]]))
        if args.errors:
            for model, anatomy in report["errors"].items():
                print("\n" + error_anatomy.render(error_anatomy.from_dict(anatomy), model))
    return 0


def _run_folder_readers(paths: Sequence[str]
                        ) -> tuple[FolderRows | None, Callable[..., str | None] | None]:
    """How ``ert score`` reads run folders (their layout is the evaluation layer's), imported
    only when one of ``paths`` is a folder; (None, None) for files alone."""
    from pathlib import Path

    if not any(Path(p).is_dir() for p in paths):
        return None, None
    from core.evaluation.run_dir import run_baseline, scored_rows

    return scored_rows, run_baseline


def _columns(value: str | None) -> list[str]:
    """``--by accent,gender`` as a list."""
    return [c.strip() for c in (value or "").split(",") if c.strip()]


def _say_language(choice: LanguageChoice) -> None:
    """On stderr, when a file's rows named no language: the one read from its references,
    or, when they do not tell, which normaliser scored them and how to choose."""
    from core.languages import english_name
    from core.normalize import normalizer_label
    from core.scoring import FROM_REFERENCES, UNKNOWN_ORIGIN

    rows = f"{choice.unnamed} row{'s' if choice.unnamed != 1 else ''} with no language"
    if choice.origin == FROM_REFERENCES:
        print(f"ert score: {choice.source}: {rows}, read as "
              f"{english_name(choice.language) or choice.language} from the references "
              f"(--language overrides)", file=sys.stderr)
    elif choice.origin == UNKNOWN_ORIGIN:
        print(f"warning: ert score: {choice.source}: {rows}, and the references do not tell "
              f"which; scored with {normalizer_label(None)}. Choose one with --language "
              f"(e.g. --language fr).", file=sys.stderr)


def _info(args: argparse.Namespace) -> int:
    from core import threads

    settings = threads.apply_torch()
    print(f"threads: {settings.threads} (torch intra-op {settings.torch_threads}, "
          f"inter-op {settings.torch_interop_threads})")
    for key, value in settings.env.items():
        print(f"  {key}={value}")
    return 0


def build_parser(evaluation: bool = True) -> argparse.ArgumentParser:
    """Every subcommand; ``evaluation=False`` leaves out the evaluation ones, whose parsers
    import the ASR stack (~0.2 s of CPU that ``ert chat`` does not need)."""
    parser = argparse.ArgumentParser(
        prog="ert", description="ERT: local speech and language models on a small machine.")
    sub = parser.add_subparsers(dest="command")

    models = sub.add_parser("models", help="bundled model packages")
    msub = models.add_subparsers(dest="models_command", required=True)
    verify = msub.add_parser("verify", help="check the bundled models' checksums",
                             description="Example: ert models verify")
    verify.set_defaults(func=_models_verify)

    chat = sub.add_parser(
        "chat", help="ask the local LLM one question (from your documents with --collection)",
        description='Examples: ert chat "What is the capital of France?"; '
                    'ert chat --collection notes --json "Who directs the lab?" (answer, evidence '
                    'sentences, sources, timing and token counts as one JSON document)')
    chat.add_argument("question")
    chat.add_argument("--model", default=None, help="key in configs/llm.toml")
    chat.add_argument("--collection", default=None, help="answer from this RAG collection")
    chat.add_argument("--k", type=int, default=3, help="chunks retrieved")
    chat.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    chat.add_argument("--max-new-tokens", type=int, default=None,
                      help="default: 96 for document answers, 200 otherwise")
    chat.add_argument("--temperature", type=float, default=0.0,
                      help="without documents (document answers are greedy)")
    chat.add_argument("--json", action="store_true", help="print one JSON document")
    chat.set_defaults(func=_chat)

    ingest = sub.add_parser("ingest", help="add documents to a RAG collection",
                            description="Example: ert ingest notes docs/*.md")
    ingest.add_argument("collection")
    ingest.add_argument("files", nargs="+")
    ingest.set_defaults(func=_ingest)

    demo = sub.add_parser(
        "demo-data", help="synthesise a small en/fr ASR dataset with espeak-ng",
        description="Example: ert demo-data --out data/demo --lang fr --count 10\n"
                    "Writes DIR/manifest.jsonl and DIR/audio/*.wav (16 kHz); reruns reuse files.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", required=True, metavar="DIR", help="output folder")
    demo.add_argument("--lang", nargs="+", default=["en", "fr"], choices=["en", "fr"],
                      help="languages (default: en fr)")
    demo.add_argument("--count", type=int, default=None,
                      help="utterances per language (default: all 40)")
    demo.set_defaults(func=_demo_data)

    from core.api.settings import OPENAI_DEFAULT_MODEL, ServeSettings  # light: no server

    serve = sub.add_parser(
        "serve", help="serve the ASR models over HTTP (OpenAI-compatible; = start_api.py)",
        description=f"Example: ert serve --port {ServeSettings.port}, then "
                    f"curl http://localhost:{ServeSettings.port}/health")
    serve.add_argument("--host", default=ServeSettings.host,
                       help="bind address (default %(default)s; 0.0.0.0 exposes it)")
    serve.add_argument("--port", type=int, default=ServeSettings.port,
                       help="port to listen on (default %(default)s)")
    serve.add_argument("--device", choices=["cpu", "cuda"], default=ServeSettings.device,
                       help="default %(default)s")
    serve.add_argument("--api-key", default=None,
                       help="require 'Authorization: Bearer KEY' (default: $ERT_API_KEY)")
    serve.add_argument("--max-upload-mb", type=float, default=ServeSettings.max_upload_mb,
                       help="default %(default)s")
    serve.add_argument("--budget-gb", type=float, default=None,
                       help="memory for loaded models (default: 80%% of what is free)")
    serve.add_argument("--no-batching", action="store_true",
                       help="one request per forward pass")
    serve.add_argument("--batch-window-ms", type=float, default=ServeSettings.batch_window_ms,
                       help="default %(default)s")
    serve.add_argument("--max-batch", type=int, default=ServeSettings.max_batch,
                       help="default %(default)s")
    serve.add_argument("--queue-size", type=int, default=ServeSettings.queue_size,
                       help="waiting requests per model before 503 (default %(default)s)")
    serve.add_argument("--registry", default=None, help="ASR registry file")
    serve.add_argument("--model", default=None,
                       help=f"model for requests that name none or {OPENAI_DEFAULT_MODEL} (what "
                            "OpenAI's clients send by default); default: the registry's "
                            "`default`")
    serve.add_argument("--model-ttl", type=float, default=ServeSettings.model_ttl,
                       metavar="SECONDS", help="unload a model idle this long (-1 never, 0 "
                                               "after each request; default %(default)s)")
    serve.set_defaults(func=_serve)

    score = sub.add_parser(
        "score", help="score predictions: WER/CER with 95%% intervals, a baseline's verdict",
        description="Scores an ERT run folder, a NeMo / Open ASR Leaderboard JSONL (text, "
                    "pred_text; optional model, language, audio_filepath, duration) or ERT rows "
                    "(reference, hypothesis) with today's normalizer. Rows without `model` take "
                    "the file's stem as the model name.",
        epilog="examples:\n  ert score runs/20261123-101500-ab12\n"
               "  ert score whisper_fr.jsonl my_finetune.jsonl --baseline whisper_fr --json\n"
               "  ert score runs/20261123-101500-ab12 --write   # re-score its result files",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    score.add_argument("paths", nargs="+", metavar="PATH",
                       help="run folder(s) or prediction file(s) (.jsonl, .json)")
    score.add_argument("--language", default=None,
                       help="language of rows that name none (picks the normalizer)")
    score.add_argument("--baseline", default=None, metavar="MODEL",
                       help="report every other model's paired WER change against this one")
    score.add_argument("--strip-accents", action="store_true",
                       help="score é as e (accents are kept by default)")
    score.add_argument("--by", default=None, metavar="COLUMNS",
                       help="WER/CER per value of these columns, e.g. accent,gender (clip "
                            "length, language and dataset are always sliced)")
    score.add_argument("--errors", action="store_true",
                       help="the most frequent substitutions (ref → hyp), deleted and "
                            "inserted words of each model")
    score.add_argument("--json", action="store_true", help="print one JSON document")
    score.add_argument("--write", action="store_true",
                       help="also rewrite the run folder's consolidated result files")
    score.set_defaults(func=_score)

    if evaluation:
        from core.evaluation.commands import register as register_evaluation

        register_evaluation(sub)

    info = sub.add_parser("info", help="show the thread caps in force",
                          description="Example: ERT_THREADS=2 ert info")
    info.set_defaults(func=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(evaluation=argv[:1] != ["chat"])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if sys.stdin.isatty():  # `ert` alone: the seed's interactive menu
            from core.evaluation.commands import menu

            return menu(parser.parse_args(["evaluate"]))
        parser.print_help()
        return 0
    return int(args.func(args))
