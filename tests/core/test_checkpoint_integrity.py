"""Checkpoint integrity (issue 13 item 14): content hashes verified on load, atomic replacement of
best/final, export into a temporary folder, normal file modes.

    pytest tests/core/test_checkpoint_integrity.py
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from emollm.cli import main
from emollm.io import sha256_file
from emollm.model.checkpoint import (
    CheckpointError,
    export_merged,
    load_checkpoint,
    read_manifest,
    replace_dir,
    save_checkpoint,
    verify_checkpoint,
)
from emollm.model.resolve import load_system


def _modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix() or ".": stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_manifest_hashes_every_file_and_modes_are_normal(fresh_tiny_fast, tmp_path) -> None:
    old = os.umask(0o022)
    try:
        ck = save_checkpoint(fresh_tiny_fast, tmp_path / "ck", extra={"step": 1})
    finally:
        os.umask(old)
    files = read_manifest(ck)["files"]
    assert set(files) == {"trainable.safetensors", "model.yaml", "prompt_contract.yaml"}  # the contract too
    for rel, want in files.items():
        assert want == {"sha256": sha256_file(ck / rel), "bytes": (ck / rel).stat().st_size}
    modes = _modes(ck)
    assert modes.pop(".") == 0o755 and set(modes.values()) == {0o644}, modes
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary sibling left
    assert verify_checkpoint(ck)["step"] == 1

    old = os.umask(0o027)  # the umask is respected, not replaced
    try:
        ck2 = save_checkpoint(fresh_tiny_fast, tmp_path / "ck2")
    finally:
        os.umask(old)
    modes = _modes(ck2)
    assert modes.pop(".") == 0o750 and set(modes.values()) == {0o640}


def emollm(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``emollm ARGS`` through the console-script entry point: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["emollm", *args])
    with pytest.raises(SystemExit) as e:
        main()
    return int(e.value.code or 0), capsys.readouterr().err


def test_damaged_checkpoint_is_a_clear_error_naming_the_file(fresh_tiny_fast, tmp_path, monkeypatch, capsys) -> None:
    ck = save_checkpoint(fresh_tiny_fast, tmp_path / "ck")
    weights = ck / "trainable.safetensors"
    data = weights.read_bytes()

    weights.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match=r"trainable\.safetensors: \d+ bytes where manifest\.json records"):
        load_checkpoint(ck)
    # the CLI: one line naming the file, exit 2, no SafetensorError traceback
    code, err = emollm(["export", str(ck), "--out", str(tmp_path / "x")], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and str(weights) in err, err
    assert "Traceback" not in err and "SafetensorError" not in err and not (tmp_path / "x").exists()

    flipped = bytearray(data)
    flipped[-1] ^= 0xFF  # same size, other content
    weights.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="content differs from the sha256"):
        load_system(ck)

    weights.write_bytes(data)
    (ck / "prompt_contract.yaml").unlink()
    with pytest.raises(CheckpointError, match=r"prompt_contract\.yaml: missing"):
        verify_checkpoint(ck)

    # a checkpoint from before hashes existed: a truncated weights file still gives a clear error
    man = json.loads((ck / "manifest.json").read_text())
    del man["files"]
    (ck / "manifest.json").write_text(json.dumps(man))
    weights.write_bytes(data[:100])
    with pytest.raises(CheckpointError, match=r"trainable\.safetensors: cannot be read as safetensors"):
        load_checkpoint(ck)


def test_replace_never_leaves_neither(fresh_tiny_fast, tmp_path) -> None:
    best = save_checkpoint(fresh_tiny_fast, tmp_path / "best", extra={"step": 1})
    save_checkpoint(fresh_tiny_fast, tmp_path / "best", extra={"step": 2})  # replaced in one swap
    assert read_manifest(best)["step"] == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["best"]

    # what a crash between "old aside" and "new in" would leave: only .best.old; it is put back
    best.rename(tmp_path / ".best.old")
    assert load_checkpoint(best) is not None and read_manifest(best)["step"] == 2
    assert not (tmp_path / ".best.old").exists()

    # and replace_dir itself recovers before swapping
    new = tmp_path / "new"
    new.mkdir()
    (new / "x").write_text("new")
    best.rename(tmp_path / ".best.old")
    replace_dir(new, best)
    assert (best / "x").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_export_writes_a_temporary_folder_and_renames(fresh_tiny_fast, tmp_path) -> None:
    out = tmp_path / "export"
    old = os.umask(0o022)
    try:
        export_merged(fresh_tiny_fast, out)
    finally:
        os.umask(old)
    files = read_manifest(out)["files"]
    assert "config.json" in files and "trainable.safetensors" in files and "prompt_contract.yaml" in files
    verify_checkpoint(out)
    modes = _modes(out)
    dirs = {k for k in modes if (out / k).is_dir()}
    assert {modes[k] for k in dirs} == {0o755} and {v for k, v in modes.items() if k not in dirs} == {0o644}
    (out / "stale.txt").write_text("from an earlier export")
    export_merged(fresh_tiny_fast, out)  # a second export replaces the folder as a whole
    assert not (out / "stale.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="is not an emollm export"):
        export_merged(fresh_tiny_fast, mine)
    assert (mine / "notes.txt").read_text() == "keep me"
