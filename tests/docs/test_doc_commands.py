"""Every command shown in README.md, docs/*.md and the usage comments of shipped YAMLs parses against
the real CLI, so a renamed command or option cannot leave the docs behind; a few cheap offline
commands are also run for real.

    pytest tests/docs/test_doc_commands.py

What is checked, per shown line (parametrized by ``file:line``, so a failure names the place):

* ``emollm ...`` (also ``.venv/bin/emollm``, ``python -m emollm``, ``torchrun ... -m emollm``) in a
  fenced code block or a YAML usage comment: the subcommand chain resolves and
  ``cmd.make_context(..., resilient_parsing=False)`` accepts the arguments (unknown options, missing
  required arguments and badly typed values fail). Then cheap meaning checks: a shipped training or
  data recipe loads with the line's ``key=value`` overrides, eval task/suite names, metric names and
  presets exist. Nothing is executed. Placeholders (``CKPT``, ``$b``, ``[--probe]``, ``...``) are fine.
* ``emollm ...`` in an inline code span: the command names resolve and every ``--option`` exists.
* ``python -m emollm.X ...``: the module exists, is runnable, and knows every ``--option`` shown.
* ``make TARGET``: the Makefile defines the target.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from emollm.cli import app

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
YAML_USAGE = sorted(p for d in ("train", "data_recipes", "eval") for p in (REPO / d).rglob("*.yaml"))

_START = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:\S*/)?(?:emollm|python3?|torchrun|deepspeed|make)(?:\s|$)")
_INLINE = re.compile(r"`((?:\S*/)?emollm(?: [^`]*)?)`")
_SHELL_VAR = re.compile(r"^\$(?:\w+|\{\w+\}|@|\*)$")
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")  # CKPT, X, FILE: an argument to be filled in


@dataclass(frozen=True)
class Shown:
    """One command line shown in a doc: where it is, its text, and how to check it."""

    where: str  # "docs/DATA.md:13"
    text: str  # the logical line (continuations joined, comments kept)
    kind: str  # "emollm" | "inline" | "module" | "make"
    argv: tuple[str, ...]  # emollm: args after the program; module: (module, args...); make: targets


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash continuations; the line number is the first line's."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for no, line in lines:
        if not buf:
            start = no
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


SHELL_FENCES = {"", "bash", "sh", "shell", "console", "zsh", "text"}  # python/yaml/json blocks are not commands


def _markdown(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(lines inside shell code blocks, lines outside any code block), each with its 1-based number."""
    shell: list[tuple[int, str]] = []
    prose: list[tuple[int, str]] = []
    fence, lang = None, ""
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
        if m and fence is None:
            fence, lang = m.group(1), m.group(2).lower()
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2):
            fence = None
        elif fence is None:
            prose.append((no, line))
        elif lang in SHELL_FENCES:
            shell.append((no, line))
    return shell, prose


def _yaml_usage(path: Path) -> list[tuple[int, str]]:
    """The usage lines in a YAML's comments (``#   emollm prepare ...``)."""
    lines = [
        (no, line.lstrip()[1:])
        for no, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith("#")
    ]
    return _logical_lines(lines)


def _tokens(text: str) -> list[str]:
    text = re.sub(r"^\s*\$\s+", "", text)
    toks = shlex.split(text, comments=True)
    while toks and re.match(r"^[A-Z_][A-Z0-9_]*=", toks[0]):  # VAR=value prefixes
        toks.pop(0)
    cut = next((i for i, t in enumerate(toks) if t in ("&", "&&", ";", "|", ">", ">>", "2>", "2>&1")), len(toks))
    return toks[:cut]


def _emollm_args(toks: list[str]) -> list[str] | None:
    if toks and Path(toks[0]).name == "emollm":
        return toks[1:]
    for i, t in enumerate(toks[:-1]):
        if t in ("-m", "--module") and toks[i + 1] == "emollm":
            return toks[i + 2 :]
    return None


def _classify(where: str, text: str) -> Shown | None:
    if not _START.match(text.strip().removeprefix("$ ")):
        return None
    try:
        toks = _tokens(text)
    except ValueError as e:  # unbalanced quotes
        raise ValueError(f"{where}: cannot split {text!r} like a shell would: {e}") from None
    args = _emollm_args(toks)
    if args is not None:
        return Shown(where, text.strip(), "emollm", tuple(args))
    if len(toks) >= 3 and Path(toks[0]).name.startswith("python") and toks[1] == "-m" and toks[2].startswith("emollm."):
        return Shown(where, text.strip(), "module", tuple(toks[2:]))
    if toks and toks[0] == "make":
        return Shown(where, text.strip(), "make", tuple(t for t in toks[1:] if not t.startswith("-") and "=" not in t))
    return None


def _from_markdown(path: Path, name: str) -> list[Shown]:
    shell, prose = _markdown(path)
    shown = [s for no, text in _logical_lines(shell) if (s := _classify(f"{name}:{no}", text)) is not None]
    for no, line in prose:
        for m in _INLINE.finditer(line):
            shown.append(Shown(f"{name}:{no}", m.group(1), "inline", tuple(m.group(1).split()[1:])))
    return shown


def collect() -> list[Shown]:
    shown: list[Shown] = []
    for path in DOCS:
        shown += _from_markdown(path, _rel(path))
    for path in YAML_USAGE:
        shown += [s for no, text in _yaml_usage(path) if (s := _classify(f"{_rel(path)}:{no}", text)) is not None]
    return shown


SHOWN = collect()
BY_KIND = {k: [s for s in SHOWN if s.kind == k] for k in ("emollm", "inline", "module", "make")}


def _root() -> Any:
    return typer.main.get_command(app)


def _normalise(args: tuple[str, ...]) -> list[str]:
    """Fill placeholders so the line can be parsed: ``[--probe]`` -> ``--probe``, ``$b`` -> ``1``,
    ``...`` dropped."""
    out = []
    for t in args:
        if t.startswith("["):
            t = t[1:]
        if t.endswith("]") and t.count("]") > t.count("["):
            t = t[:-1]
        if t in ("...", "$@"):
            continue
        out.append("1" if _SHELL_VAR.match(t) else t)
    return out


def _resolve(args: list[str]) -> tuple[Any, str, list[str]]:
    """(command, its full name, the remaining args), following group -> subcommand."""
    cmd, name = _root(), "emollm"
    while hasattr(cmd, "commands") and args and not args[0].startswith("-"):
        sub = cmd.commands.get(args[0])
        if sub is None:
            if _PLACEHOLDER.match(args[0]):
                return None, name, args
            raise AssertionError(f"`{name}` has no command {args[0]!r}; it has: {', '.join(sorted(cmd.commands))}")
        cmd, name, args = sub, f"{name} {args[0]}", args[1:]
    return cmd, name, args


def _parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse like the real CLI would (help output swallowed); returns (command name, params)."""
    cmd, name, rest = _resolve(list(args))
    assert cmd is not None, f"placeholder command in a full command line: {args}"
    assert not hasattr(cmd, "commands"), f"`{name}` needs a subcommand ({', '.join(sorted(cmd.commands))})"
    old = sys.stdout
    sys.stdout = io.StringIO()
    try:
        ctx = cmd.make_context(name, list(rest), resilient_parsing=False)  # click consumes the list
    except typer.Exit as e:  # --help
        assert e.exit_code == 0
        return name, {}
    except Exception as e:  # a click UsageError: unknown option, missing argument, bad value
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        raise AssertionError(f"`{name} {' '.join(rest)}` does not parse: {msg}") from None
    finally:
        sys.stdout = old
    return name, dict(ctx.params)


# -- meaning checks: cheap, offline, no data -------------------------------------------------------


def _is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.match(value)) or value == "1"


def _check_train(p: dict[str, Any]) -> None:
    recipe = Path(str(p["recipe"]))
    if (REPO / recipe).is_file():
        from emollm.training.config import load_run_config

        load_run_config(recipe, list(p.get("overrides") or []))


def _check_prepare(p: dict[str, Any]) -> None:
    from emollm.data.prepare import load_recipe

    if not _is_placeholder(str(p["recipe"])):
        load_recipe(str(p["recipe"]), list(p.get("overrides") or []))


def _check_eval(p: dict[str, Any]) -> None:
    from emollm.evaluation.tasks import load_suite, load_task, parse_roots

    for t in (p.get("tasks") or "").split(","):
        if t and not _is_placeholder(t):
            load_task(t)
    if p.get("suite") and not _is_placeholder(p["suite"]):
        load_suite(p["suite"])
    parse_roots(list(p.get("root") or []))
    ck = p.get("checkpoint")
    if ck and "/" not in ck and not _is_placeholder(ck):
        _check_preset(ck)


def _check_preset(name: str | None) -> None:
    from emollm.model.presets import PRESETS

    if name and not _is_placeholder(name):
        assert name in PRESETS.names(), f"unknown preset {name!r}; presets: {', '.join(PRESETS.names())}"


def _check_bench(p: dict[str, Any]) -> None:
    from emollm.bench.workload import BENCH_PRESETS

    assert p.get("preset") is None or p["preset"] in BENCH_PRESETS, f"unknown bench preset {p['preset']!r}"


def _check_score(p: dict[str, Any]) -> None:
    from emollm.evaluation.metrics import METRICS

    if p["metric"] is None:  # eval run folders carry their metrics
        assert p["gold"] is None, "--gold without --metric"
        return
    assert p["metric"] in METRICS.names(), f"unknown metric {p['metric']!r}; metrics: {', '.join(METRICS.names())}"


MEANING = {
    "emollm train": _check_train,
    "emollm prepare": _check_prepare,
    "emollm eval": _check_eval,
    "emollm score": _check_score,
    "emollm chat": lambda p: _check_preset(p.get("preset")),
    "emollm serve": lambda p: _check_preset(p.get("preset")),
    "emollm extract": lambda p: _check_preset(p.get("model")),
    "emollm bench train": _check_bench,
    "emollm bench eval": _check_bench,
    "emollm bench generate": _check_bench,
    "emollm bench extract": _check_bench,
}


# -- the shown lines -------------------------------------------------------------------------------


def test_docs_show_enough_commands() -> None:
    """The extraction itself works (so the tests below cannot pass vacuously)."""
    assert len(BY_KIND["emollm"]) >= 30, [s.where for s in BY_KIND["emollm"]]
    assert len(BY_KIND["inline"]) >= 10
    assert BY_KIND["module"] and BY_KIND["make"]
    wheres = {s.where.split(":")[0] for s in BY_KIND["emollm"]}
    assert {"README.md", "docs/TRAINING.md", "docs/EVALUATION.md", "data_recipes/mer2023.yaml"} <= wheres


def test_extraction_handles_continuations_placeholders_and_comments(tmp_path: Path) -> None:
    md = tmp_path / "X.md"
    md.write_text(
        "Run `emollm data check M [--probe]` later.\n"
        "```bash\n"
        "$ emollm eval -c CKPT --suite mer \\\n"
        "    --root emer=/data/EMER   # a comment\n"
        "HF_HUB_OFFLINE=1 torchrun --nproc_per_node 2 -m emollm train t.yaml &\n"
        "python -m emollm.config_docs > docs/CONFIG.md\n"
        "make test\n"
        "```\n"
        "```python\n"
        "emollm = 'not a command'\n"
        "```\n"
    )
    got = [(s.where, s.kind, s.argv) for s in _from_markdown(md, "X.md")]
    assert got == [
        ("X.md:3", "emollm", ("eval", "-c", "CKPT", "--suite", "mer", "--root", "emer=/data/EMER")),
        ("X.md:5", "emollm", ("train", "t.yaml")),
        ("X.md:6", "module", ("emollm.config_docs",)),
        ("X.md:7", "make", ("test",)),
        ("X.md:1", "inline", ("data", "check", "M", "[--probe]")),
    ]
    assert _normalise(("check", "x", "[--probe]", "$b", "...", "")) == ["check", "x", "--probe", "1", ""]


@pytest.mark.parametrize("shown", BY_KIND["emollm"], ids=[s.where for s in BY_KIND["emollm"]])
def test_shown_command_parses(shown: Shown, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    name, params = _parse(_normalise(shown.argv))
    check = MEANING.get(name)
    if check is not None and params:
        try:
            check(params)
        except AssertionError as e:
            raise AssertionError(f"{shown.where}: {shown.text}\n{e}") from None
        except Exception as e:  # noqa: BLE001 - config/lookup errors name what is wrong
            raise AssertionError(f"{shown.where}: {shown.text}\n{type(e).__name__}: {e}") from None


@pytest.mark.parametrize("shown", BY_KIND["inline"], ids=[f"{s.where}:{s.text}" for s in BY_KIND["inline"]])
def test_inline_command_names_and_options_exist(shown: Shown) -> None:
    cmd, name, rest = _resolve(_normalise(shown.argv))
    if cmd is None:  # `emollm bench X --help`
        return
    known = {o for p in cmd.params for o in (*p.opts, *getattr(p, "secondary_opts", ()))} | {"--help", "-h"}
    for t in rest:
        opt = t.split("=", 1)[0]
        if opt.startswith("-") and opt not in ("-", "--"):
            assert opt in known, f"{shown.where}: `{name}` has no option {opt} (it has {', '.join(sorted(known))})"


@pytest.mark.parametrize("shown", BY_KIND["module"], ids=[s.where for s in BY_KIND["module"]])
def test_shown_module_is_runnable_and_knows_its_options(shown: Shown) -> None:
    import importlib.util

    module, *args = shown.argv
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{shown.where}: no module {module}"
    if spec.submodule_search_locations:  # a package: python -m runs its __main__
        spec = importlib.util.find_spec(module + ".__main__")
        assert spec is not None, f"{shown.where}: package {module} has no __main__"
    source = Path(spec.origin).read_text()
    assert '__name__ == "__main__"' in source, f"{shown.where}: {module} cannot be run with python -m"
    for a in args:
        if a.startswith("--"):
            assert f'"{a}"' in source, f"{shown.where}: {module} has no option {a}"


@pytest.mark.parametrize("shown", BY_KIND["make"], ids=[s.where for s in BY_KIND["make"]])
def test_shown_make_target_exists(shown: Shown) -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile, flags=re.M))
    for t in shown.argv:
        assert t in targets, f"{shown.where}: the Makefile has no target {t!r} (it has {', '.join(sorted(targets))})"


# -- a few offline commands, run for real ----------------------------------------------------------

runner = CliRunner()


def test_help_lists_every_command() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0, r.output
    for name in _root().commands:
        assert re.search(rf"\b{name}\b", r.output), f"`emollm --help` does not list {name}"


# (command as the docs show it, a regex its output must match); deeper checks: tests/core/test_model_cli.py
OFFLINE = [
    ("emollm doctor", r"(?s)python .*torch .*device\s.*\b(cpu|cuda)"),
    ("emollm ls presets", r"(?m)^tiny-fast\s+family=causal\s+llm="),
    ("emollm ls encoders", r"(?m)^\w+\s+input="),
    ("emollm validate train/tiny.yaml", r"^train/tiny\.yaml: valid training recipe$"),
]


@pytest.mark.parametrize(("line", "expect"), OFFLINE, ids=[c for c, _ in OFFLINE])
def test_offline_doc_command_runs(line: str, expect: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = {" ".join(("emollm", *s.argv)) for s in SHOWN if s.kind in ("emollm", "inline")}
    name = " ".join(line.split()[:2])
    assert any(s == line or s.startswith(name) for s in shown), f"`{line}` is no longer shown in the docs"
    monkeypatch.chdir(REPO)
    r = runner.invoke(app, line.split()[1:], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert re.search(expect, r.output.strip()), r.output


def test_score_classification_as_docs_metrics_shows(tmp_path: Path) -> None:
    """The METRICS.md line ``emollm score --metric classification --gold gold.csv --pred pred.csv --label-space mer6``."""
    (tmp_path / "gold.csv").write_text("name,discrete\na,happy\nb,sad\nc,angry\nd,happy\n")
    (tmp_path / "pred.csv").write_text("name,discrete\na,happy\nb,sad\nc,happy\nd,happy\n")
    args = [
        "score",
        "--metric",
        "classification",
        "--gold",
        str(tmp_path / "gold.csv"),
        "--pred",
        str(tmp_path / "pred.csv"),
        "--label-space",
        "mer6",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert list(out)[:3] == ["metric", "mode", "score"]  # the order METRICS.md promises
    assert out["metric"] == "classification" and out["mode"] == "published"
    assert out["accuracy"] == pytest.approx(0.75)
    from sklearn.metrics import f1_score

    gold, pred = ["happy", "sad", "angry", "happy"], ["happy", "sad", "happy", "happy"]
    assert out["score"] == pytest.approx(f1_score(gold, pred, average="weighted"))


def test_score_error_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "gold.csv").write_text("name,discrete\na,happy\nb,sad\n")
    (tmp_path / "pred.csv").write_text("name,discrete\na,happy\n")
    r = runner.invoke(
        app,
        ["score", "-m", "classification", "--gold", str(tmp_path / "gold.csv"), "--pred", str(tmp_path / "pred.csv")],
    )
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and "b" in r.stderr and len(r.stderr.strip().splitlines()) == 1
