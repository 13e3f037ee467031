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
