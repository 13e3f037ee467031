"""Command-line entry points of the inference area: ``emollm chat``, ``emollm predict``, ``emollm serve``.

    emollm chat --checkpoint runs/mini/final --video clip.mp4 --subtitle "I can't believe it." -p "How does she feel?"
    emollm chat --preset mini --audio voice.wav --task label --probs -p ""        # one-shot, label + probabilities
    emollm chat --checkpoint runs/mini/final                                     # interactive; /help lists commands
    emollm predict --checkpoint runs/mini/final --folder clips/ --out runs/pred/clips --explain
    emollm predict --checkpoint runs/mini/final --manifest data_recipes/synthmer.yaml --split test \\
        --out runs/pred/synth --valence-from data_recipes/synthmer.yaml --shard 0/2
    emollm serve --checkpoint runs/mini/final --port 8000 --media-root /data/clips    # web demo at http://host:8000/

A model is a checkpoint folder or a preset name (``--checkpoint`` accepts both, ``--preset`` names a
preset). Encoders load once; media go through the same featurizer and feature cache as training
(``--cache-dir``, default ``runs/features``; ``--no-cache`` computes live). docs/INFERENCE.md has more.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer

from emollm.inference.remote import (
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    EndpointFileOpt,
    LogprobsOpt,
    ModelOpt,
    ProfileOpt,
)

HELP = """commands:
  /video PATH   /audio PATH   /image PATH   attach media to the next question
  /subtitle TEXT                            what the person says in the clip (next question)
  /label  /explain  /openset                answer that task now (default instruction)
  /task label|explain|openset               task for plain questions
  /probs                                    toggle label probabilities
  /reset                                    new conversation
  /quit                                     leave (also Ctrl-D)
  anything else (or an empty line) is a question about the attached clip"""


def _model_spec(checkpoint: str, preset: str) -> str:
    if checkpoint and preset:
        raise ValueError("give either --checkpoint or --preset, not both")
    spec = checkpoint or preset
    if not spec:
        raise ValueError("name a model: --checkpoint FOLDER (or a preset name) or --preset NAME")
    return spec


def _model_id(spec: str) -> str:
    p = Path(spec)
    if p.is_dir():
        r = p.resolve()
        return f"{r.parent.name}/{r.name}" if r.parent.name else r.name
    return spec


def _format_probs(probs: dict[str, float]) -> str:
    return "  ".join(f"{lab} {p:.3f}" for lab, p in sorted(probs.items(), key=lambda kv: -kv[1]))


def _answer(
    session: Any, write: Callable[[str], None], text: str | None, task: str | None, probs: bool, stream: bool
) -> Any:
    on_text = write if stream else None
    reply = session.ask(text, task=task, probs=probs, on_text=on_text)
    if not stream:
        write(reply.text)
    write("\n")
    if probs and reply.probs:
        write(f"[probabilities] {_format_probs(reply.probs)}\n")
    if reply.missing:
        write(f"[absent] {', '.join(f'{m}: {why}' for m, why in reply.missing.items())}\n")
    return reply


def run_repl(
    session: Any,
    lines: Iterable[str],
    write: Callable[[str], None],
    probs: bool = False,
    stream: bool = True,
    prompt: Callable[[], None] | None = None,
) -> int:
    """Read questions and slash commands from ``lines``; returns the number of answers given."""
    from emollm.features.featurizer import FeatureError

    answered = 0
    if prompt:
        prompt()
    for raw in lines:
        line = raw.rstrip("\n")
        cmd, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        try:
            if cmd in ("/quit", "/exit", "/q"):
                break
            if cmd == "/help":
                write(HELP + "\n")
            elif cmd in ("/video", "/audio", "/image"):
                if not arg:
                    raise ValueError(f"{cmd} needs a file path")
                session.attach(cmd[1:], Path(arg).expanduser())
                write(f"[attached {cmd[1:]}: {arg}]\n")
            elif cmd == "/subtitle":
                session.set_subtitle(arg or None)
                write(f"[subtitle: {arg or '(none)'}]\n")
            elif cmd == "/probs":
                probs = not probs
                write(f"[probabilities {'on' if probs else 'off'}]\n")
            elif cmd == "/reset":
                session.reset()
                write("[new conversation]\n")
            elif cmd == "/task":
                from emollm.inference.chat import normalize_task

                session.task = normalize_task(arg)
                write(f"[task: {session.task}]\n")
            elif cmd in ("/label", "/explain", "/openset"):
                _answer(session, write, arg or None, cmd[1:], probs, stream)
                answered += 1
            elif cmd.startswith("/"):
                write(f"unknown command {cmd}; /help lists them\n")
            else:
                _answer(session, write, line.strip() or None, None, probs, stream)
                answered += 1
        except (ValueError, FileNotFoundError, KeyError, FeatureError) as e:
            write(f"error: {e}\n")
        if prompt:
            prompt()
    return answered


def chat_command(
    checkpoint: str = typer.Option("", "--checkpoint", "-c", help="Checkpoint folder or preset name."),
    preset: str = typer.Option("", "--preset", help="Preset name (tiny, tiny-fast, mini, emotion-llama)."),
    video: Path | None = typer.Option(None, "--video", help="Video clip for the first question."),
    audio: Path | None = typer.Option(None, "--audio", help="Audio file (alone: audio-only input)."),
    image: Path | None = typer.Option(None, "--image", help="Still image (face) for the first question."),
    subtitle: str = typer.Option("", "--subtitle", help="What the person says in the clip."),
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="One-shot: ask this, print the answer, exit."),
    task: str = typer.Option("explain", "--task", help="label | explain | openset."),
    probs: bool = typer.Option(False, "--probs", help="Print label probabilities."),
    no_stream: bool = typer.Option(False, "--no-stream", help="Print answers whole instead of streaming."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
    manifest: str = typer.Option("", "--manifest", help="With --sample: a manifest folder or data recipe."),
    sample: str = typer.Option("", "--sample", help="Attach this manifest sample (media, subtitle, peak frame)."),
    cache_dir: Path = typer.Option(Path("runs/features"), "--cache-dir", help="Feature cache folder."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute features live, cache nothing."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
) -> None:
    """Chat about a clip: multi-turn, media at any turn, streamed answers (one-shot with -p)."""
    from emollm.features.featurizer import FeatureError
    from emollm.inference.chat import ChatSession, open_predictor

    spec = _model_spec(checkpoint, preset)
    if sample and not manifest:
        raise ValueError("--sample needs --manifest")
    pred = open_predictor(spec, None if no_cache else cache_dir, device)
    session = ChatSession(pred, task=task, max_new_tokens=max_new_tokens)
    if sample:
        from emollm.data.manifests import open_manifest

        man = open_manifest(manifest)
        by_id = man.by_id()
        if sample not in by_id:
            raise KeyError(f"sample {sample!r} is not in {man.root}")
        session.attach_sample(by_id[sample], man.root)
    for kind, p in (("video", video), ("audio", audio), ("image", image)):
        if p is not None:
            session.attach(kind, p)
    if subtitle:
        session.set_subtitle(subtitle)

    def write(s: str) -> None:
        sys.stdout.write(s)
        sys.stdout.flush()

    if prompt is not None:
        try:
            _answer(session, write, prompt or None, None, probs, not no_stream)
        except FeatureError as e:
            raise ValueError(str(e)) from None
        return
    interactive = sys.stdin.isatty()
    if interactive:
        write(f"emollm chat · {spec} · task {session.task} · /help for commands\n")
    run_repl(
        session,
        sys.stdin,
        write,
        probs=probs,
        stream=not no_stream,
        prompt=(lambda: write("you> ")) if interactive else None,
    )


def predict_command(
    checkpoint: str = typer.Option("", "--checkpoint", "-c", help="Checkpoint folder or preset name."),
    manifest: str = typer.Option("", "--manifest", help="Manifest folder or data recipe."),
    split: str = typer.Option("", "--split", help="Manifest split (default: every sample)."),
    folder: Path | None = typer.Option(None, "--folder", help="Folder of clips: one sample per file, id = stem."),
    subtitles: Path | None = typer.Option(None, "--subtitles", help="--folder: CSV name,subtitle|english|sentence."),
    out: Path = typer.Option(..., "--out", help="Output folder (records, submission.csv, run.json)."),
    task: str = typer.Option("label", "--task", help="label (name,discrete,valence) | openset (name,openset)."),
    explain: bool = typer.Option(False, "--explain", help="Also generate an explanation per sample."),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    shard: str = typer.Option("", "--shard", help="i/n: every n-th sample starting at i."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1),
    no_subtitle: bool = typer.Option(False, "--no-subtitle", help="Leave subtitles out of the prompt."),
    valence_from: str = typer.Option("", "--valence-from", help="Manifest whose labelled split gives v(label)."),
    valence_split: str = typer.Option("train", "--valence-split"),
    valence_table: Path | None = typer.Option(None, "--valence-table", help="YAML/JSON {label: valence}."),
    cache_dir: Path = typer.Option(Path("runs/features"), "--cache-dir", help="Feature cache folder."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute features live, cache nothing."),
    device: str = typer.Option("auto", "--device"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    backend: BackendOpt = "local",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    endpoint: EndpointFileOpt = None,
    profile: ProfileOpt = None,
    concurrency: ConcurrencyOpt = None,
    logprobs: LogprobsOpt = None,
) -> None:
    """Predict labels (and explanations) for a folder of clips or a manifest; resumable and shardable."""
    from rich.console import Console

    from emollm.inference.chat import open_predictor
    from emollm.inference.predict import (
        PredictOptions,
        finish_run,
        folder_samples,
        read_subtitles,
        run_predict,
        valence_table_from_file,
        valence_table_from_manifest,
    )
    from emollm.shard import parse_shard

    if bool(manifest) == (folder is not None):
        raise ValueError("give exactly one input: --manifest DIR_or_recipe or --folder DIR")
    if task not in ("label", "openset"):
        raise ValueError(f"--task must be label or openset, got {task!r}")
    if valence_from and valence_table is not None:
        raise ValueError("give at most one of --valence-from and --valence-table")
    shard_t = parse_shard(shard)
    opts = PredictOptions(
        task=task,  # type: ignore[arg-type]
        explain=explain,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        include_subtitle=False if no_subtitle else None,
    )
    root: Path | None
    if folder is not None:
        samples = folder_samples(folder, read_subtitles(subtitles) if subtitles else None)
        root = None
    else:
        from emollm.data.manifests import open_manifest

        man = open_manifest(manifest)
        samples = man.split(split) if split else man.samples
        root = man.root
    pred: Any
    if backend == "openai":
        from emollm.inference.remote import RemotePredictor, endpoint_from_options

        ep = endpoint_from_options(endpoint, base_url, model, api_key_env, profile, concurrency, logprobs)
        pred = RemotePredictor(ep)
        source = ep.identity
    elif backend == "local":
        if not checkpoint:
            raise ValueError("--checkpoint is required (a checkpoint folder or a preset name), or --backend openai")
        pred = open_predictor(checkpoint, None if no_cache else cache_dir, device, batch_size)
        source = str(Path(checkpoint).resolve()) if Path(checkpoint).is_dir() else checkpoint
    else:
        raise ValueError(f"--backend must be local or openai, got {backend!r}")
    labels = pred.labels
    valence = None
    if valence_table is not None:
        valence = valence_table_from_file(valence_table, labels)
    elif valence_from:
        valence = valence_table_from_manifest(valence_from, labels, valence_split)
    try:
        summary = run_predict(pred, samples, root, out, opts, shard_t, source, progress=not quiet)
    finally:
        if backend == "openai":
            pred.write_usage(out)
    csv_path = finish_run(out, opts, valence)
    con = Console(stderr=True)
    con.print(
        f"{summary.total} samples in shard {shard_t[0]}/{shard_t[1]}: {summary.computed} predicted, "
        f"{summary.skipped} already done, {len(summary.errors)} failed -> {csv_path}"
    )
    if task == "label":
        from emollm.inference.predict import load_records

        unparsed = sorted(n for n, r in load_records(out).items() if "error" not in r and not r.get("discrete"))
        if unparsed:
            con.print(
                f"[yellow]{len(unparsed)} answer(s) name no label[/yellow] (unparsed: empty 'discrete' cell, "
                f"never a default label), e.g. {', '.join(unparsed[:5])}"
            )
    if summary.errors:
        for name, msg in list(summary.errors.items())[:10]:
            con.print(f"[red]failed[/red] {name}: {msg}")
        raise typer.Exit(1)


def serve_command(
    checkpoint: str = typer.Option("", "--checkpoint", "-c", help="Checkpoint folder or preset name."),
    preset: str = typer.Option("", "--preset", help="Preset name."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    media_root: Path | None = typer.Option(None, "--media-root", help="Allow server-side paths inside this folder."),
    max_body_mb: float = typer.Option(64.0, "--max-body-mb", help="Largest request body (MiB)."),
    max_seconds: float = typer.Option(120.0, "--max-seconds", help="Longest accepted clip (seconds)."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Cap and default for max_tokens."),
    max_queue: int = typer.Option(16, "--max-queue", help="Waiting requests before 503."),
    task: str = typer.Option("explain", "--task", help="Default task: label | explain | openset."),
    model_name: str = typer.Option("", "--model-name", help="Model id clients send (default from the model)."),
    cache_dir: Path = typer.Option(Path("runs/features"), "--cache-dir", help="Feature cache folder."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute features live, cache nothing."),
    device: str = typer.Option("auto", "--device"),
    max_messages: int = typer.Option(1000, "--max-messages", help="Most messages in one request (more: 400)."),
    max_request_seconds: float = typer.Option(
        120.0, "--max-request-seconds", help="Model time one request may use (more: 400)."
    ),
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API, with a web demo at /."""
    from emollm.inference.chat import open_predictor
    from emollm.inference.server import ServeSettings, serve

    spec = _model_spec(checkpoint, preset)
    if media_root is not None and not media_root.is_dir():
        raise FileNotFoundError(f"--media-root {media_root} is not a folder")
    settings = ServeSettings(
        model_id=model_name or _model_id(spec),
        media_root=media_root,
        max_body_mb=max_body_mb,
        max_seconds=max_seconds,
        max_new_tokens=max_new_tokens,
        max_queue=max_queue,
        default_task=task,
        max_messages=max_messages,
        max_request_seconds=max_request_seconds,
    )
    pred = open_predictor(spec, None if no_cache else cache_dir, device)
    serve(pred, settings, host, port)


def register(app: typer.Typer) -> None:
    """Add ``chat``, ``predict`` and ``serve`` to the ``emollm`` app."""
    app.command("chat")(chat_command)
    app.command("predict")(predict_command)
    app.command("serve")(serve_command)
