"""Custom CSV importer: paths relative to the CSV's folder, extra columns -> meta, every bad cell reported."""

from __future__ import annotations

from corpus_fixtures import run, write_csv, write_video


def test_custom_csv(tmp_path):
    sub = tmp_path / "lists"
    write_video(sub / "clips" / "a.mp4")
    (sub / "clips" / "a.wav").write_bytes(b"")  # exists (readability is the probe's job)
    write_csv(
        sub / "mine.csv",
        ["id", "video", "audio", "subtitle", "label", "valence", "split", "openset", "speaker"],
        [
            ["a", "clips/a.mp4", "clips/a.wav", "Hi!", "Happiness", "0.5", "", "[joy, fun]", "spk1"],
            ["b", "clips/missing.mp4", "", "", "", "", "test", "", ""],
            ["c", "", "", "text only", "bored", "high", "test", "", "spk2"],
        ],
    )
    by_id, report, _ = run("custom_csv", tmp_path, {"csv": "lists/mine.csv"}, out=tmp_path)
    a, b, c = by_id["a"], by_id["b"], by_id["c"]
    assert a.media == {"video": "lists/clips/a.mp4", "audio": "lists/clips/a.wav"}
    assert (a.label, a.valence, a.split, a.openset, a.subtitle) == ("happy", 0.5, "train", ["joy", "fun"], "Hi!")
    assert a.meta == {"speaker": "spk1"}
    assert b.media == {} and b.label is None and b.split == "test" and b.openset is None
    assert c.label is None and c.valence is None and c.meta == {"speaker": "spk2", "raw_label": "bored"}
    got = sorted((p.kind, p.file, p.row, p.field) for p in report.problems)
    assert got == [
        ("bad_value", "lists/mine.csv", 4, "valence"),
        ("missing_media", "lists/mine.csv", 3, "video"),
        ("unknown_label", "lists/mine.csv", 4, "label"),
    ]


def test_custom_csv_wrong_header(tmp_path):
    write_csv(tmp_path / "samples.csv", ["name", "clip"], [["a", "a.mp4"]])
    by_id, report, _ = run("custom_csv", tmp_path, {})
    assert by_id == {}
    p = report.problems[0]
    assert (p.kind, p.file, p.row, p.field, p.action) == ("missing_column", "samples.csv", 1, "id", "excluded")


def test_custom_csv_openset_cell_that_is_not_a_list_is_reported_not_fatal(tmp_path):
    write_csv(
        tmp_path / "samples.csv",
        ["id", "subtitle", "openset"],
        [["a", "hi", "['Joy', 'fun']"], ["b", "hey", "[joy, fun"], ["c", "yo", "[[joy], [fun]]"], ["d", "ok", "calm"]],
    )
    by_id, report, _ = run("custom_csv", tmp_path, {})
    assert sorted(by_id) == ["a", "b", "c", "d"]  # every row imported
    assert (by_id["a"].openset, by_id["b"].openset, by_id["c"].openset, by_id["d"].openset) == (
        ["joy", "fun"],
        None,
        None,
        ["calm"],
    )
    got = sorted((p.kind, p.file, p.row, p.field, p.action) for p in report.problems)
    assert got == [
        ("bad_value", "samples.csv", 3, "openset", "kept"),
        ("bad_value", "samples.csv", 4, "openset", "kept"),
    ]
    assert "unbalanced brackets" in report.problems[0].message


def test_custom_csv_misspelt_column_is_a_problem_with_the_close_match(tmp_path):
    """Issue 13 item 12: ``lable`` is reported ("did you mean 'label'?"), not "no problems found"."""
    write_csv(
        tmp_path / "samples.csv",
        ["id", "subtitle", "lable", "speaker"],
        [["a", "hi", "happy", "s1"], ["b", "ho", "sad", "s2"]],
    )
    by_id, report, _ = run("custom_csv", tmp_path, {})
    assert set(by_id) == {"a", "b"} and by_id["a"].label is None
    assert by_id["a"].meta == {"lable": "happy", "speaker": "s1"}  # a real extra column is not a problem
    assert [(p.kind, p.row, p.field, p.rows_affected) for p in report.problems] == [("unknown_column", 1, "lable", 2)]
    assert "did you mean 'label'?" in report.problems[0].message
    assert "No problems found" not in report.to_markdown()


def test_custom_csv_non_utf8_byte_names_its_row_and_imports_the_rest(tmp_path):
    """Issue 13 item 12: one Latin-1 byte in row 7 excludes row 7 (named), not the whole file."""
    lines = ["id,subtitle,label"] + [f"c{i},line {i},happy" for i in range(2, 10)]
    data = ("\n".join(lines) + "\n").encode("utf-8").replace(b"line 7", b"caf\xe9 7")
    (tmp_path / "samples.csv").write_bytes(data)
    by_id, report, _ = run("custom_csv", tmp_path, {})
    assert sorted(by_id) == [f"c{i}" for i in range(2, 10) if i != 7]
    [p] = report.problems
    assert (p.kind, p.file, p.row, p.action) == ("malformed_row", "samples.csv", 7, "excluded")
    assert "byte 0xe9 in column 'subtitle'" in p.message and report.n_excluded == 1
    # a bad byte in the header: the file is unusable, said so on row 1
    (tmp_path / "samples.csv").write_bytes(b"id,subtitl\xe9\na,b\n")
    by_id, report, _ = run("custom_csv", tmp_path, {})
    assert by_id == {} and [(p.kind, p.row) for p in report.problems] == [("unreadable_file", 1)]


def test_valence_not_finite_or_off_scale_is_reported(tmp_path):
    """Issue 13 item 13: ``inf`` / ``1e999`` / ``99`` are bad_value problems naming the row, not silently None/kept."""
    write_csv(
        tmp_path / "samples.csv",
        ["id", "subtitle", "valence"],
        [["a", "x", "inf"], ["b", "x", "1e999"], ["c", "x", "99"], ["d", "x", "-5"], ["e", "x", "2.5"], ["f", "x", ""]],
    )
    by_id, report, _ = run("custom_csv", tmp_path, {})
    assert [by_id[k].valence for k in "abcdef"] == [None, None, None, -5.0, 2.5, None]
    got = [(p.kind, p.row, p.field) for p in report.problems]
    assert got == [("bad_value", 2, "valence"), ("bad_value", 3, "valence"), ("bad_value", 4, "valence")]
    assert "not a finite number" in report.problems[1].message
    assert "outside -5..5" in report.problems[2].message
