"""Model-level commands: ``emollm doctor``, ``emollm ls``, ``emollm export``, ``emollm validate``.

emollm doctor                       # versions, device, which presets have their weights, what is missing
emollm ls encoders|projectors|presets|labels|importers|tasks|recipes
emollm export runs/mini/final --out exported/mini      # merge LoRA -> standalone HF folder
emollm validate train/mini.yaml     # load and type-check any shipped YAML without building anything
"""

from __future__ import annotations

from pathlib import Path

import typer


def _doctor_rows() -> list[tuple[str, str, str]]:
    """(item, status, detail) rows for ``emollm doctor``."""
    import importlib.util
    import platform
    from importlib import metadata

    import torch

    rows: list[tuple[str, str, str]] = []
    rows.append(("python", "ok", platform.python_version()))
    for pkg in (
        "emollm",
        "torch",
        "transformers",
        "peft",
        "accelerate",
        "deepspeed",
        "bitsandbytes",
        "opensmile",
        "av",
    ):
        try:
            rows.append((pkg, "ok", metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append((pkg, "missing", "pip install -e . (make setup)"))
    for bad in ("torchvision", "torchaudio", "timm", "torchcodec"):
        if importlib.util.find_spec(bad) is not None:
            rows.append(
                (bad, "warning", "installed: CUDA-linked builds break transformers on CPU machines; uninstall it")
            )
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        rows.append(("device", "ok", f"cuda x{torch.cuda.device_count()}: {names}"))
    else:
        rows.append(("device", "ok", f"cpu ({torch.get_num_threads()} threads); bf16 matmul: {_cpu_bf16()}"))
    from emollm.model.llm import SMOLLM2_GGUF, find_packaged_file

    for pkg, fname, what in (
        (*SMOLLM2_GGUF, "mini LLM (SmolLM2-135M-Instruct GGUF)"),
        ("fer", "data/emotion_model.hdf5", "mini face encoder (FER2013 CNN)"),
        ("fer", "data/haarcascade_frontalface_default.xml", "face detector (Haar cascade)"),
        ("skimage", "data/astronaut.png", "real test face (scikit-image)"),
    ):
        try:
            rows.append((what, "ok", str(find_packaged_file(pkg, fname))))
        except FileNotFoundError as e:
            rows.append((what, "missing", str(e)))
    from emollm.model.presets import model_config, weights_root

    cfg = model_config("emotion-llama")
    paths = [("llm", cfg.llm.path)] + [(m, mc.encoder.path) for m, mc in cfg.modalities.items()]
    seen = set()
    for name, p in paths:
        if p is None or p in seen:
            continue
        seen.add(p)
        ok = (Path(p) / "config.json").is_file()
        rows.append(
            (
                f"emotion-llama {name}",
                "ok" if ok else "missing",
                f"{p}" + ("" if ok else " (no config.json; set EMOLLM_WEIGHTS)"),
            )
        )
    rows += _native_rows()
    rows.append(("EMOLLM_WEIGHTS", "info", weights_root()))
    from emollm.paths import conformance_root, home

    rows.append(("EMOLLM_HOME", "info", str(home())))
    kit = conformance_root()
    rows.append(
        (
            "test media (conformance kit)",
            "info",
            f"{kit}: real clips and label files some tests use" if kit else "not here: only the tests that use it skip",
        )
    )
    return rows


def _native_rows() -> list[tuple[str, str, str]]:
    """One row per full-size native preset: the folder it loads from, and what is missing there."""
    from emollm.model.presets import NATIVE_FOLDERS, model_config

    rows: list[tuple[str, str, str]] = []
    for preset in NATIVE_FOLDERS:
        cfg = model_config(preset)
        folder = Path(cfg.llm.path or "")
        item = f"{preset} ({cfg.llm.family})"
        if not (folder / "config.json").is_file():
            rows.append((item, "missing", f"{folder} (no config.json; set EMOLLM_WEIGHTS)"))
        elif not (folder / "preprocessor_config.json").is_file():
            rows.append((item, "missing", f"{folder} (no preprocessor_config.json: the media settings)"))
        else:
            rows.append((item, "ok", str(folder)))
    return rows


def next_step(rows: list[tuple[str, str, str]], runs: str | Path = "runs") -> str:
    """What to do after ``emollm doctor``: fix what is missing, else train the demo model or use it."""
    from emollm.model.resolve import trained_checkpoints

    core = {"python", "emollm", "torch", "transformers", "peft", "accelerate", "av"}
    needed = ("mini ", "face detector")  # what `emollm demo` runs on
    broken = [item for item, st, _ in rows if st == "missing" and (item in core or item.startswith(needed))]
    if broken:
        return f"next: install what is missing ({', '.join(broken)}): `make setup` (or pip install -e .)"
    found = trained_checkpoints(runs)
    if found:
        return (
            f"next: `emollm chat` talks to your newest trained model ({found[0]}); "
            f"`emollm eval --checkpoint {found[0]} --suite synthmer` evaluates it"
        )
    return (
        "next: `emollm demo` (or `make demo`) builds the synthetic corpus and trains and evaluates the small "
        "demo model in minutes on this machine; then `emollm chat` talks to it"
    )


def _cpu_bf16() -> str:
    from emollm.device import cpu_bf16_kind

    return {"amx": "AMX (fast: use precision=bf16)", None: "emulated (use fp32)"}.get(
        cpu_bf16_kind(), "AVX512-BF16 (use precision=bf16)"
    )


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor() -> None:
        """Versions, device, which presets have their weights and what is missing (and where it was looked for)."""
        from rich.console import Console
        from rich.table import Table

        t = Table(title="emollm doctor")
        for c in ("item", "status", "detail"):
            t.add_column(c, overflow="fold")
        colors = {"ok": "green", "missing": "red", "warning": "yellow", "absent": "yellow", "info": "cyan"}
        rows = _doctor_rows()
        for item, status, detail in rows:
            t.add_row(item, f"[{colors.get(status, 'white')}]{status}[/]", detail)
        con = Console()
        con.print(t)
        con.print(next_step(rows), markup=False, highlight=False)

    @app.command("ls")
    def ls(
        what: str = typer.Argument(
            ..., help="encoders | projectors | presets | labels | importers | tasks | recipes | mixtures"
        ),
    ) -> None:
        """List registered components by short name."""
        from emollm.paths import resource_root

        root = resource_root()
        if what == "encoders":
            from emollm.encoders import ENCODERS

            for n in ENCODERS.names():
                spec = ENCODERS.get(n)
                typer.echo(f"{n:12s} input={spec.input_kind:8s} {spec.description}")
        elif what == "projectors":
            from emollm.model.projectors import PROJECTORS

            typer.echo("\n".join(PROJECTORS.names()))
        elif what == "presets":
            from emollm.model.presets import PRESETS, model_config

            for n in PRESETS.names():
                try:
                    cfg = model_config(n)
                    mods = ", ".join(f"{m}={mc.encoder.name}" for m, mc in cfg.modalities.items())
                    llm = f"{cfg.llm.source}:{cfg.llm.path or 'random'}"
                    typer.echo(f"{n:24s} family={cfg.llm.family:13s} llm={llm}  {mods}")
                except Exception as e:  # noqa: BLE001 - listing must not fail on one preset
                    typer.echo(f"{n:24s} (invalid: {e})")
        elif what == "labels":
            from emollm.labels import LABEL_SPACES

            for n in LABEL_SPACES.names():
                typer.echo(f"{n:12s} {', '.join(LABEL_SPACES.get(n).labels)}")
        elif what == "importers":
            from emollm.data.importers import IMPORTERS

            typer.echo("\n".join(IMPORTERS.names()))
        elif what in ("tasks", "recipes", "mixtures", "suites"):
            folder = {
                "tasks": "eval/tasks",
                "recipes": "data_recipes",
                "mixtures": "data_recipes/mixtures",
                "suites": "eval/suites",
            }[what]
            for p in sorted((root / folder).glob("*.yaml")):
                typer.echo(p.stem)
        else:
            raise KeyError(
                f"unknown listing {what!r}; choose encoders, projectors, presets, labels, importers, tasks, recipes, mixtures, suites"
            )

    @app.command("export")
    def export(
        checkpoint: Path = typer.Argument(..., help="checkpoint folder (runs/<name>/final)"),
        out: Path = typer.Option(..., "--out", help="output folder"),
    ) -> None:
        """Merge LoRA into the LLM and write a standalone folder (HF model + tokenizer + projectors + model.yaml)."""
        from emollm.model.checkpoint import export_merged
        from emollm.model.resolve import load_system

        system = load_system(checkpoint)
        path = export_merged(system, out)
        typer.echo(
            f"exported to {path} (load with `emollm chat --checkpoint {path}` or AutoModelForCausalLM for the LLM alone)"
        )

    @app.command("validate")
    def validate(
        path: Path = typer.Argument(..., help="a training recipe, data recipe, mixture, eval task/suite YAML"),
    ) -> None:
        """Load and type-check a YAML file without building any model."""
        from emollm.validate import validate_yaml

        kind = validate_yaml(path)
        typer.echo(f"{path}: valid {kind}")
