"""Readers of the MER file formats: real files from the kit, and malformed files with errors naming file, row, column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emollm.evaluation.readers import read_label_csv, read_openset_csv, read_valence_csv


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_mer2023_csvs_match_the_npz(conformance: Path) -> None:
    with np.load(conformance / "mer2023" / "label-6way.npz", allow_pickle=True) as z:
        corpora = {k: z[k].tolist() for k in ("test1_corpus", "test3_corpus")}
    t1 = read_label_csv(conformance / "mer2023" / "test1-label.csv", valence="required")
    assert len(t1) == 411 and t1.names[0] == "sample_00001998"
    assert {n: (t1.discrete[n], t1.valence[n]) for n in t1.names} == {
        n: (v["emo"], float(v["val"])) for n, v in corpora["test1_corpus"].items()
    }
    t3 = read_label_csv(conformance / "mer2023" / "test3-label.csv")
    assert len(t3) == 834 and set(t3.valence.values()) == {None}
    assert t3.discrete == {n: v["emo"] for n, v in corpora["test3_corpus"].items()}
    assert t3.where("samplenew_00006611", "discrete").endswith("test3-label.csv: row 2, column discrete")


def test_openset_reader(conformance: Path) -> None:
    gold = read_openset_csv(conformance / "mer2024_ov" / "check-openset.csv", style="mer2024")
    assert len(gold) == 332
    assert gold.items["sample_00000007"] == ["excited", "joyful", "happy"]


def test_bom_blank_lines_and_extra_columns(tmp_path: Path) -> None:
    p = _text(tmp_path / "a.csv", "\ufeffname,discrete,valence,speaker\n\ns1, happy ,1.5,F\ns2,,,M\n")
    t = read_label_csv(p)
    assert t.names == ["s1", "s2"] and t.discrete == {"s1": "happy", "s2": ""}
    assert t.valence == {"s1": 1.5, "s2": None} and t.rows == {"s1": 3, "s2": 4}


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("", {}, r"empty file; expected a header"),
        ("name,label\ns1,happy\n", {}, r"missing column\(s\) discrete"),
        ("name,discrete\ns1,happy\n", {"valence": "required"}, r"missing column\(s\) valence"),
        ("name,discrete\ns1,happy\ns2,sad,extra\n", {}, r"row 3: 3 field\(s\) but the header has 2"),
        ("name,discrete\ns1,happy\ns1,sad\n", {}, r"row 3, column name: duplicate name 's1' \(first seen in row 2\)"),
        ("name,discrete\n ,happy\n", {}, r"row 2, column name: empty name"),
        ("name,discrete,valence\ns1,happy,abc\n", {}, r"row 2, column valence: 'abc' is not a number"),
        ("name,discrete,valence\ns1,happy,nan\n", {}, r"row 2, column valence: 'nan' is not a finite number"),
        ("name,discrete,valence\ns1,happy,\n", {"valence": "required"}, r"row 2, column valence: empty"),
        ("name,discrete,discrete\ns1,a,b\n", {}, r"row 1: column\(s\) discrete appear more than once"),
    ],
)
def test_label_csv_errors(tmp_path: Path, text: str, kwargs: dict, match: str) -> None:
    p = _text(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=r"bad.csv: " + match):
        read_label_csv(p, **kwargs)


def test_other_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv: file not found"):
        read_label_csv(tmp_path / "nope.csv")
    (tmp_path / "latin1.csv").write_bytes("name,discrete\ns1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_label_csv(tmp_path / "latin1.csv")
    p = _text(tmp_path / "ov.csv", "name,openset\ns1,\"['happy', 'sad']\"\ns2,\"['angry'\"\n")
    with pytest.raises(ValueError, match=r"ov.csv: row 3, column openset: .*unbalanced brackets"):
        read_openset_csv(p)
    assert read_openset_csv(p, style="affectgpt").items["s2"] == ["angry"]
    p = _text(tmp_path / "val.csv", "name,valence\ns1,0.5\ns2,\n")
    with pytest.raises(ValueError, match=r"val.csv: row 3, column valence: '' is not a number"):
        read_valence_csv(p)


def test_quoted_cells_may_hold_commas_and_newlines(tmp_path: Path) -> None:
    p = _text(tmp_path / "q.csv", 'name,openset\ns1,"happy,\n sad"\ns2,"[\'calm\']"\n')
    t = read_openset_csv(p)
    assert t.items == {"s1": ["happy", "sad"], "s2": ["calm"]} and t.rows == {"s1": 2, "s2": 4}
