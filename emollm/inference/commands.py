"""Command-line entry points of the inference area: ``emollm chat``, ``emollm predict``, ``emollm serve``.

    emollm chat --checkpoint runs/mini/final --video clip.mp4 --subtitle "I can't believe it." -p "How does she feel?"
    emollm chat --preset mini --audio voice.wav --task label --probs -p ""        # one-shot, label + probabilities
    emollm chat --checkpoint runs/mini/final                                     # interactive; /help lists commands
    emollm predict --checkpoint runs/mini/final --folder clips/ --out runs/pred/clips --explain
    emollm predict --checkpoint runs/mini/final --manifest data_recipes/synthmer.yaml --split test \\
        --out runs/pred/synth --valence-from data_recipes/synthmer.yaml --shard 0/2
    emollm serve --checkpoint runs/mini/final --port 8000 --media-root /data/clips    # web demo at http://host:8000/

A model is a checkpoint folder or a preset name (``--checkpoint`` accepts both, ``--preset`` names a
preset, untrained: a note says so); with neither, the newest trained checkpoint under ``runs/``
(``emollm.model.resolve.default_model_spec``). Encoders load once; media go through the same featurizer
and feature cache as training (``--cache-dir``, default ``runs/features``; ``--no-cache`` computes
live). chat and predict share the decoding flags of ``generation_cli``. In the chat REPL, Ctrl-C during
an answer stops it (the session stays); ``/save``, ``/set``, ``/bye``. docs/INFERENCE.md has more.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError

from emollm.inference.generation import GenerationOptions, cut_at_stop
from emollm.inference.generation_cli import generation_flags
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

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem

HELP = """commands:
  /video PATH   /audio PATH   /image PATH   attach media to the next question (checked now)
  /subtitle TEXT                            what the person says in the clip (next question)
  /label  /explain  /openset                answer that task now (default instruction)
  /task label|explain|openset               task for plain questions
  /probs                                    toggle label probabilities
  /set                                      list the settings
  /set temperature X | top_p X | top_k N | repetition_penalty X | no_repeat_ngram N | max_tokens N | seed N|none
  /set system TEXT                          the system prompt (/set system: back to the model's)
  /save FILE                                write the conversation as JSON
  /reset                                    new conversation
  /bye                                      leave (also /quit, Ctrl-D, or Ctrl-C twice at the prompt)
  Ctrl-C during an answer stops it; the conversation is kept
  anything else (or an empty line) is a question about the attached clip"""

INTERRUPT = "\x03"
"""What a line reader yields for Ctrl-C at the prompt."""

SET_FIELDS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "no_repeat_ngram": "no_repeat_ngram",
    "max_tokens": "max_new_tokens",
    "max_new_tokens": "max_new_tokens",
    "seed": "seed",
}
"""``/set NAME`` -> GenerationOptions field."""


def _model_spec(checkpoint: str, preset: str, say: Callable[[str], None] | None = None) -> str:
    """The model a command runs: --checkpoint or --preset, else the newest trained checkpoint under runs/."""
    if checkpoint and preset:
        raise ValueError("give either --checkpoint or --preset, not both")
    spec = checkpoint or preset
    if not spec:
        from emollm.model.resolve import default_model_spec

        spec = default_model_spec()
        (say or _say)(f"using the newest trained checkpoint under runs/: {spec} (--checkpoint to name another)")
    return spec


def _say(msg: str) -> None:
    typer.secho(msg, err=True, fg=typer.colors.CYAN)


def _warn_untrained(system: EmoSystem, spec: str) -> None:
    if not getattr(system, "trained", True):
        typer.secho(
            f"note: {spec} is untrained (random projectors, no fine-tuning): its answers are noise. "
            "Train the demo model with `make demo`; with no model named, chat, predict and serve use it.",
            err=True,
            fg=typer.colors.YELLOW,
        )


def _model_id(spec: str) -> str:
    p = Path(spec)
    if p.is_dir():
        r = p.resolve()
        return f"{r.parent.name}/{r.name}" if r.parent.name else r.name
    return spec


def _format_probs(probs: dict[str, float]) -> str:
    return "  ".join(f"{lab} {p:.3f}" for lab, p in sorted(probs.items(), key=lambda kv: -kv[1]))


@contextmanager
def _ctrl_c_stops(cancel: threading.Event) -> Iterator[None]:
    """While answering, Ctrl-C (SIGINT) sets ``cancel`` (generation stops at the next token) instead of
    raising; a second Ctrl-C before the answer has stopped raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _answer(
    session: Any,
    write: Callable[[str], None],
    text: str | None,
    task: str | None,
    probs: bool,
    stream: bool,
    gen: GenerationOptions | None = None,
) -> Any:
    gen = gen or GenerationOptions(max_new_tokens=session.max_new_tokens)
    on_text = write if stream else None
    cancel = threading.Event()
    if gen.seed is not None:
        import torch

        torch.manual_seed(gen.seed)
    kwargs = gen.generate_kwargs(session.system.tokenizer)
    with _ctrl_c_stops(cancel):
        reply = session.ask(text, task=task, probs=probs, on_text=on_text, cancel=cancel, **kwargs)
    if gen.stop:
        reply.text, _ = cut_at_stop(reply.text, gen.stop)
    if not stream:
        write(reply.text)
    write("\n")
    if reply.finish_reason == "cancelled":
        write("[answer stopped (Ctrl-C); the conversation is kept]\n")
    if probs and reply.probs:
        write(f"[probabilities] {_format_probs(reply.probs)}\n")
    if reply.missing:
        write(f"[absent] {', '.join(f'{m}: {why}' for m, why in reply.missing.items())}\n")
    return reply


def _attach_checked(session: Any, kind: str, path: str | Path) -> Path:
    """Attach a file after checking it exists and decodes (errors now, not at the next question)."""
    from emollm.inference.media_input import check_media

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{kind} file not found: {p}")
    check_media(p, kind, where=str(p))
    session.attach(kind, p)
    return p


def _set(session: Any, gen: GenerationOptions, arg: str, write: Callable[[str], None]) -> GenerationOptions:
    """``/set`` (list), ``/set system TEXT``, ``/set NAME VALUE``; returns the (new) decoding options."""
    name, _, value = arg.partition(" ")
    name, value = name.strip().lower(), value.strip()
    if not name:
        rows = {k: getattr(gen, f) for k, f in SET_FIELDS.items() if k != "max_new_tokens"}
        rows["system"] = session.system_prompt
        rows["task"] = session.task
        write("".join(f"  {k:<19} {'(none)' if v is None else v}\n" for k, v in rows.items()))
        return gen
    if name == "system":
        session.system_prompt = value or session.predictor.contract.system_prompt
        write(f"[system: {session.system_prompt or '(the chat template default)'}]\n")
        return gen
    field = SET_FIELDS.get(name)
    if field is None:
        raise ValueError(f"/set {name}: unknown setting; expected one of {', '.join([*SET_FIELDS, 'system'])}")
    if not value:
        raise ValueError(f"/set {name} needs a value")
    data = gen.model_dump()
    data[field] = None if field == "seed" and value.lower() == "none" else value
    try:
        new = GenerationOptions.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"/set {name} {value}: {e.errors()[0]['msg']}") from None
    session.max_new_tokens = new.max_new_tokens
    write(f"[{name}: {getattr(new, field)}]\n")
    return new


def _save(session: Any, gen: GenerationOptions, path: str, spec: str) -> Path:
    """Write the conversation (turns with their media, subtitle, task and answer) as JSON, atomically."""
    from datetime import datetime, timezone

    from emollm.io import atomic_write_json

    if not path:
        raise ValueError("/save needs a file name (e.g. /save chat.json)")
    p = Path(path).expanduser()
    if not p.parent.is_dir():
        raise FileNotFoundError(f"/save {path}: folder {p.parent} does not exist")
    turns = []
    for t in session.turns:
        turns.append(
            {
                "task": t.task,
                "media": dict(t.sample.media) if t.sample is not None else {},
                "subtitle": t.sample.subtitle if t.sample is not None else None,
                "user": t.message.text,
                "modalities": t.message.modalities,
                "answer": t.answer,
            }
        )
    atomic_write_json(
        p,
        {
            "model": spec,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "system": session.system_prompt,
            "task": session.task,
            "generation": gen.model_dump(),
            "turns": turns,
        },
    )
    return p


def tty_lines(prompt: str) -> Iterator[str]:
    """Lines typed at a terminal (line editing via readline); Ctrl-C at the prompt yields ``INTERRUPT``."""
    try:
        import readline  # noqa: F401 - input() gains line editing and history
    except ImportError:  # pragma: no cover - Windows
        pass
    while True:
        try:
            yield input(prompt)
        except EOFError:  # Ctrl-D: end the prompt's line before leaving
            sys.stdout.write("\n")
            return
        except KeyboardInterrupt:
            yield INTERRUPT


def run_repl(
    session: Any,
    lines: Iterable[str],
    write: Callable[[str], None],
    probs: bool = False,
    stream: bool = True,
    prompt: Callable[[], None] | None = None,
    gen: GenerationOptions | None = None,
    spec: str = "",
) -> int:
    """Read questions and slash commands from ``lines``; returns the number of answers given.

    ``INTERRUPT`` in ``lines`` (Ctrl-C at the prompt) prints a hint; a second one in a row quits.
    """
    from emollm.features.featurizer import FeatureError

    gen = gen or GenerationOptions(max_new_tokens=session.max_new_tokens)
    answered = 0
    interrupted = False
    it = iter(lines)
    while True:
        if prompt:
            prompt()
        try:
            raw = next(it)
        except StopIteration:
            break
        except KeyboardInterrupt:  # Ctrl-C while a plain iterable (sys.stdin) was reading
            raw = INTERRUPT
        if raw == INTERRUPT:
            if interrupted:
                write("\n")
                break
            interrupted = True
            write("\n[Ctrl-C again, /bye or Ctrl-D to leave]\n")
            continue
        interrupted = False
        line = raw.rstrip("\n")
        cmd, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        try:
            if cmd in ("/bye", "/quit", "/exit", "/q"):
                break
            if cmd == "/help":
                write(HELP + "\n")
            elif cmd in ("/video", "/audio", "/image"):
                if not arg:
                    raise ValueError(f"{cmd} needs a file path")
                _attach_checked(session, cmd[1:], arg)
                write(f"[attached {cmd[1:]}: {arg}]\n")
            elif cmd == "/subtitle":
                session.set_subtitle(arg or None)
                write(f"[subtitle: {arg or '(none)'}]\n")
            elif cmd == "/probs":
                probs = not probs
                write(f"[probabilities {'on' if probs else 'off'}]\n")
            elif cmd == "/set":
                gen = _set(session, gen, arg, write)
            elif cmd == "/save":
                write(f"[saved {len(session.turns)} turns to {_save(session, gen, arg, spec)}]\n")
            elif cmd == "/reset":
                session.reset()
                write("[new conversation]\n")
            elif cmd == "/task":
                from emollm.inference.chat import normalize_task

                session.task = normalize_task(arg)
                write(f"[task: {session.task}]\n")
            elif cmd in ("/label", "/explain", "/openset"):
                _answer(session, write, arg or None, cmd[1:], probs, stream, gen)
                answered += 1
            elif cmd.startswith("/"):
                write(f"unknown command {cmd}; /help lists them\n")
            else:
                _answer(session, write, line.strip() or None, None, probs, stream, gen)
                answered += 1
        except (ValueError, FileNotFoundError, KeyError, FeatureError) as e:
            write(f"error: {e}\n")
        except KeyboardInterrupt:
            write("\n[interrupted; the conversation is kept]\n")
    return answered


@generation_flags(max_new_tokens=256)
def chat_command(
    checkpoint: str = typer.Option(
        "", "--checkpoint", "-c", help="Checkpoint folder or preset name (default: the newest under runs/)."
    ),
    preset: str = typer.Option(
        "",
        "--preset",
        help="Preset name (`emollm ls presets`: tiny, mini, emotion-llama, tiny-qwen2.5-omni, qwen2.5-omni-7b...).",
    ),
    video: Path | None = typer.Option(None, "--video", help="Video clip for the first question."),
    audio: Path | None = typer.Option(None, "--audio", help="Audio file (alone: audio-only input)."),
    image: Path | None = typer.Option(None, "--image", help="Still image (face) for the first question."),
    subtitle: str = typer.Option("", "--subtitle", help="What the person says in the clip."),
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="One-shot: ask this, print the answer, exit."),
    task: str = typer.Option("explain", "--task", help="label | explain | openset."),
    probs: bool = typer.Option(False, "--probs", help="Print label probabilities."),
    no_stream: bool = typer.Option(False, "--no-stream", help="Print answers whole instead of streaming."),
    manifest: str = typer.Option("", "--manifest", help="With --sample: a manifest folder or data recipe."),
    sample: str = typer.Option("", "--sample", help="Attach this manifest sample (media, subtitle, peak frame)."),
    cache_dir: Path = typer.Option(Path("runs/features"), "--cache-dir", help="Feature cache folder."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute features live, cache nothing."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    gen: GenerationOptions = None,  # type: ignore[assignment]  # the decoding flags (generation_flags)
) -> None:
    """Chat about a clip: multi-turn, media at any turn, streamed answers (one-shot with -p)."""
    from emollm.features.featurizer import FeatureError
    from emollm.inference.chat import ChatSession, open_predictor

    spec = _model_spec(checkpoint, preset)
    if sample and not manifest:
        raise ValueError("--sample needs --manifest")
    pred = open_predictor(spec, None if no_cache else cache_dir, device)
    _warn_untrained(pred.system, spec)
    session = ChatSession(pred, task=task, max_new_tokens=gen.max_new_tokens)
    if sample:
        from emollm.data.manifests import open_manifest

        man = open_manifest(manifest)
        by_id = man.by_id()
        if sample not in by_id:
            raise KeyError(f"sample {sample!r} is not in {man.root}")
        session.attach_sample(by_id[sample], man.root)
    for kind, p in (("video", video), ("audio", audio), ("image", image)):
        if p is not None:
            _attach_checked(session, kind, p)
    if subtitle:
        session.set_subtitle(subtitle)

    def write(s: str) -> None:
        sys.stdout.write(s)
        sys.stdout.flush()

    if prompt is not None:
        try:
            _answer(session, write, prompt or None, None, probs, not no_stream, gen)
        except FeatureError as e:
            raise ValueError(str(e)) from None
        return
    interactive = sys.stdin.isatty()
    if interactive:
        write(f"emollm chat · {spec} · task {session.task} · /help for commands, /bye to leave\n")
    run_repl(
        session,
        tty_lines("you> ") if interactive else sys.stdin,
        write,
        probs=probs,
        stream=not no_stream,
        gen=gen,
        spec=spec,
    )


@generation_flags(max_new_tokens=128)
def predict_command(
    checkpoint: str = typer.Option(
        "", "--checkpoint", "-c", help="Checkpoint folder or preset name (default: the newest under runs/)."
    ),
    preset: str = typer.Option("", "--preset", help="Preset name (untrained: random projectors)."),
    manifest: str = typer.Option("", "--manifest", help="Manifest folder or data recipe."),
    split: str = typer.Option("", "--split", help="Manifest split (default: every sample)."),
    folder: Path | None = typer.Option(None, "--folder", help="Folder of clips: one sample per file, id = stem."),
    subtitles: Path | None = typer.Option(None, "--subtitles", help="--folder: CSV name,subtitle|english|sentence."),
    out: Path = typer.Option(..., "--out", help="Output folder (records, submission.csv, run.json)."),
    task: str = typer.Option("label", "--task", help="label (name,discrete,valence) | openset (name,openset)."),
    explain: bool = typer.Option(False, "--explain", help="Also generate an explanation per sample."),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    shard: str = typer.Option("", "--shard", help="i/n: every n-th sample starting at i."),
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
    gen: GenerationOptions = None,  # type: ignore[assignment]  # the decoding flags (generation_flags)
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
    if backend not in ("local", "native", "openai"):
        raise ValueError(f"--backend must be local, native or openai, got {backend!r}")
    if backend == "openai":
        if checkpoint or preset:
            raise ValueError("--backend openai asks an endpoint: give --base-url/--model, not --checkpoint/--preset")
        skip = {"max_new_tokens"}
        if gen.model_dump(exclude=skip) != GenerationOptions().model_dump(exclude=skip):
            raise ValueError(
                "the decoding flags (--temperature, --repetition-penalty...) apply to --backend local; "
                "an endpoint's decoding is set in its EndpointConfig (--endpoint)"
            )
    else:
        spec = _model_spec(checkpoint, preset)
        if backend == "native":
            from emollm.evaluation.plan import require_native
            from emollm.model.resolve import model_config_for

            require_native(model_config_for(spec, what="--checkpoint"), spec)
    opts = PredictOptions(
        task=task,  # type: ignore[arg-type]
        explain=explain,
        batch_size=batch_size,
        max_new_tokens=gen.max_new_tokens,
        include_subtitle=False if no_subtitle else None,
        generation=gen if backend != "openai" else None,
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
    else:
        pred = open_predictor(spec, None if no_cache else cache_dir, device, batch_size)
        _warn_untrained(pred.system, spec)
        source = str(Path(spec).resolve()) if Path(spec).is_dir() else spec
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
    _warn_untrained(pred.system, spec)
    serve(pred, settings, host, port)


def register(app: typer.Typer) -> None:
    """Add ``chat``, ``predict`` and ``serve`` to the ``emollm`` app."""
    app.command("chat")(chat_command)
    app.command("predict")(predict_command)
    app.command("serve")(serve_command)
