"""MERR importer (NCEV lists, coarse/fine JSON, transcripts, video/) and MER-Factory output, on real files."""

from __future__ import annotations

import json
import shutil

import pytest
from corpus_fixtures import MERR_OPTIONS, kit_root, make_merr_corpus, run

from emollm.config import ConfigError, validate
from emollm.data.importers import IMPORTERS
from emollm.data.importers.mer_factory import merr_record


def test_merr_happy_path(tmp_path):
    root = make_merr_corpus(tmp_path / "merr")
    by_id, report, _ = run("merr", root, MERR_OPTIONS, out=tmp_path / "merr")
    assert report.problems == []
    assert set(by_id) == {"clip_a", "clip_b", "clip_c"}  # "not_listed" in the JSON pool is not a sample
    a, b, c = by_id["clip_a"], by_id["clip_b"], by_id["clip_c"]
    assert (a.split, a.label, a.valence) == ("train", "happy", 1.5)
    assert b.valence is None  # -10 placeholder
    assert c.split == "test" and c.valence is None
    assert a.coarse == "Coarse description of clip_a." and a.fine == "She smiles, so she is happy."
    assert a.subtitle == "What a day!"  # transcript wins over the fine JSON's text
    assert b.subtitle == "Only the fine text."  # fallback to the fine JSON's text
    assert c.fine is None
    assert a.meta["frame_count"] == 40 and a.meta["peak_index"] == "7"
    assert a.meta["AU_list"] == ["AU06", "AU12"] and a.meta["pseu_emotion"] == "happy"
    assert a.meta["speaker"] == "spk1" and a.meta["gender"] == "f" and "split" not in a.meta
    assert a.media == {"video": "video/clip_a.mp4"}  # relative to the output folder


def test_merr_media_outside_output_is_absolute(tmp_path):
    root = make_merr_corpus(tmp_path / "merr")
    by_id, _, _ = run("merr", root, MERR_OPTIONS, out=tmp_path / "elsewhere")
    assert by_id["clip_a"].media["video"] == str((root / "video" / "clip_a.mp4").resolve())


def test_merr_problems_name_file_and_row(tmp_path):
    root = make_merr_corpus(tmp_path / "merr", videos=False)
    (root / "video").mkdir()
    (root / "train_NCEV.txt").write_text(
        "clip_a 40 happy 1.5\n"
        "clip_b 32 bored\n"  # unknown label (row 2)
        "broken_line 3\n"  # malformed (row 3)
        "clip_a 40 happy\n"  # duplicate (row 4)
        "\n"
        "clip_d x12 sad\n",  # bad frame count (row 6)
        encoding="utf-8",
    )
    by_id, report, _ = run("merr", root, MERR_OPTIONS)
    kinds = {(p.kind, p.file, p.row) for p in report.problems}
    assert ("unknown_label", "train_NCEV.txt", 2) in kinds
    assert ("malformed_row", "train_NCEV.txt", 3) in kinds
    assert ("duplicate_id", "train_NCEV.txt", 4) in kinds
    assert ("bad_value", "train_NCEV.txt", 6) in kinds
    assert ("missing_media", "train_NCEV.txt", 1) in kinds  # video/ exists but is empty
    assert by_id["clip_b"].label is None and by_id["clip_b"].meta["raw_label"] == "bored"
    assert "clip_d" in by_id and "frame_count" not in by_id["clip_d"].meta
    assert "broken_line" not in by_id
    assert report.n_excluded == 2  # malformed + duplicate
    unknown = next(p for p in report.problems if p.kind == "unknown_label")
    assert "bored" in unknown.message and unknown.action == "kept"


def test_merr_label_space_and_aliases(tmp_path):
    root = make_merr_corpus(tmp_path / "merr", videos=False)
    (root / "train_NCEV.txt").write_text("clip_a 40 fear\nclip_b 32 joyful\n", encoding="utf-8")
    opts = {**MERR_OPTIONS, "video_dir": None}
    by_id, report, _ = run("merr", root, opts, space="merr9")
    assert by_id["clip_a"].label == "fear" and by_id["clip_b"].label == "happy"  # synonym
    by_id, report, _ = run("merr", root, opts, space="mer6")
    assert by_id["clip_a"].label is None and any(p.kind == "unknown_label" for p in report.problems)
    by_id, report, _ = run("merr", root, {**opts, "label_aliases": {"fear": "worried"}}, space="mer6")
    assert by_id["clip_a"].label == "worried"
    with pytest.raises(ConfigError, match="not a label"):
        run("merr", root, {**opts, "label_aliases": {"x": "bored"}})


def test_merr_require_and_missing_files(tmp_path):
    root = make_merr_corpus(tmp_path / "merr", videos=False)
    opts = {**MERR_OPTIONS, "video_dir": "video", "require": ["fine"], "transcripts": "nope.csv"}
    by_id, report, _ = run("merr", root, opts)
    assert len(by_id) == 3
    miss = [p for p in report.problems if p.kind == "missing_annotation"]
    assert [(p.file, p.row, p.sample_id) for p in miss] == [("test_NCEV.txt", 1, "clip_c")]
    files = {p.file for p in report.problems if p.kind == "missing_file"}
    assert files == {"nope.csv", "video"}
    assert not any(p.kind == "missing_media" for p in report.problems)  # folder absent: reported once


def test_merr_bad_json_and_options(tmp_path):
    root = make_merr_corpus(tmp_path / "merr", videos=False)
    (root / "MERR_fine_grained.json").write_text('{"clip_a": {"smp_reason_caption": "x",}', encoding="utf-8")
    by_id, report, _ = run("merr", root, {**MERR_OPTIONS, "video_dir": None})
    bad = [p for p in report.problems if p.kind == "unreadable_file"]
    assert bad and bad[0].file == "MERR_fine_grained.json" and bad[0].row == 1
    assert by_id["clip_a"].fine is None and by_id["clip_a"].coarse  # the coarse JSON still applies
    with pytest.raises(ConfigError, match="did you mean 'lists'"):
        validate(IMPORTERS.get("merr").options_model, {"listss": {}}, "x")
    with pytest.raises(ConfigError, match="video_dir"):
        validate(IMPORTERS.get("merr").options_model, {"lists": {"train": "a"}, "require": ["video"]}, "x")


# --- MER-Factory ------------------------------------------------------------------------------------


def _mf_examples():
    root = kit_root()
    d = root / "merr" / "mer_factory_examples" if root else None
    if d is None or not d.is_dir():
        pytest.skip("conformance kit absent")
    return d


def test_mer_factory_examples_match_format_md_section_7():
    d = _mf_examples()
    for fname in ("gemini_merr.json", "llava-llama3_llama3.2_merr_data.json"):
        data = json.loads((d / fname).read_text(encoding="utf-8"))
        rec = merr_record(data, "coarse")
        assert rec.txt_line == "xxx 0 angry"
        e = rec.entry
        assert e["AU_list"] == []
        assert e["visual_prior_list"] == ["Cheek raiser", "Lid tightener", "Upper lip raiser"]
        assert e["peak_index"] == "88"
        assert e["peak_AU_list"] == ["AU06", "AU07", "AU10", "AU12", "AU14", "AU25"]
        assert e["pseu_emotion"] == "angry"
        assert set(e) == {
            "AU_list",
            "visual_prior_list",
            "audio_prior_list",
            "peak_index",
            "peak_AU_list",
            "pseu_emotion",
            "caption",
        }
        fine = merr_record(data, "fine").entry
        assert fine["text"] == "" and "smp_reason_caption" in fine and "caption" not in fine
    gem = merr_record(json.loads((d / "gemini_merr.json").read_text(encoding="utf-8"))).entry
    # up to the first ASCII '.': the whole Chinese sentence (。 is not '.') plus the tone clause
    assert gem["audio_prior_list"].startswith("我哪知道啊？ 我也没有这方面的经验。")
    assert "Speaker's tone: exasperated, slightly annoyed" in gem["audio_prior_list"]
    assert "Pitch" not in gem["audio_prior_list"]
    llava = merr_record(json.loads((d / "llava-llama3_llama3.2_merr_data.json").read_text(encoding="utf-8"))).entry
    assert llava["audio_prior_list"] == "The audio transcript is: '我哪知道啊我也没有这方便的经验'"


def test_mer_factory_folder_import_equals_exported_merr(tmp_path):
    d = _mf_examples()
    mf = tmp_path / "mf"
    (mf / "xxx").mkdir(parents=True)
    shutil.copy(d / "gemini_merr.json", mf / "xxx" / "xxx_merr_data.json")
    (mf / "xxx" / "xxx.csv").write_text("frame,AU06_r\n1,0.1\n2,0.2\n3,0.3\n", encoding="utf-8")  # OpenFace rows
    by_id, report, _ = run("mer_factory", mf, {"output_dir": "."}, space="merr9")
    s = by_id["xxx"]
    assert s.label == "angry" and s.meta["frame_count"] == 3
    assert s.meta["visual_prior_list"] == ["Cheek raiser", "Lid tightener", "Upper lip raiser"]
    assert s.coarse.startswith("Let's begin by dissecting") and "\n\n" in s.coarse  # real newlines kept
    assert [p.kind for p in report.problems] == ["missing_media"]  # source_path video/xxx.mp4 is not there

    # export the same record as MER-Factory would, then import with the MERR importer: same annotations
    rec = merr_record(json.loads((d / "gemini_merr.json").read_text(encoding="utf-8")), "coarse", frame_count=3)
    ex = tmp_path / "exported"
    ex.mkdir()
    (ex / "MERR_coarse_grained.txt").write_text(rec.txt_line, encoding="utf-8")
    (ex / "MERR_coarse_grained.json").write_text(json.dumps({rec.name: rec.entry}, ensure_ascii=False), "utf-8")
    merr, rep2, _ = run(
        "merr",
        ex,
        {"lists": {"train": "MERR_coarse_grained.txt"}, "coarse_json": "MERR_coarse_grained.json"},
        space="merr9",
    )
    m = merr["xxx"]
    assert rep2.problems == []
    assert m.label == s.label and m.meta["frame_count"] == 3
    for k in ("AU_list", "visual_prior_list", "audio_prior_list", "peak_index", "peak_AU_list", "pseu_emotion"):
        assert m.meta[k] == s.meta[k], k


def test_mer_factory_unknown_emotion_is_reported(tmp_path):
    mf = tmp_path / "mf" / "clip"
    mf.mkdir(parents=True)
    data = {"source_path": "video/clip.mp4", "chronological_emotion_peaks": [], "final_summary": "x"}
    (mf / "clip_merr_data.json").write_text(json.dumps(data), encoding="utf-8")
    (mf / "broken_merr_data.json").write_text("[1, 2]", encoding="utf-8")
    by_id, report, _ = run("mer_factory", tmp_path / "mf", {"pattern": "*/*_merr_data.json"}, space="merr9")
    assert by_id["clip"].label is None and by_id["clip"].meta["raw_label"] == "unknown"
    kinds = {p.kind: p for p in report.problems}
    assert kinds["unknown_label"].file.endswith("clip_merr_data.json")
    assert kinds["malformed_row"].action == "excluded"


def test_merr_duplicate_in_side_table_is_reported(tmp_path):
    root = make_merr_corpus(tmp_path / "merr", videos=False)
    (root / "transcription_en_all.csv").write_text(
        'name,sentence\nclip_a,first\nclip_a,second\nclip_c,"line\u2028with a separator"\n', encoding="utf-8"
    )
    by_id, report, _ = run("merr", root, {**MERR_OPTIONS, "video_dir": None})
    assert [(p.kind, p.file, p.row) for p in report.problems] == [("duplicate_id", "transcription_en_all.csv", 3)]
    assert by_id["clip_a"].subtitle == "first" and by_id["clip_c"].subtitle == "line\u2028with a separator"
