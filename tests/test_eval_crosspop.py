"""Cross-population evaluation without a model: the labels-layout reader on tiny sets built
here (every image format it promises, metadata merged by file, clear errors), group
breakdowns and bootstrap intervals against counts worked out by hand, and splits by subject.
The parts that run the detector, a model or the command are in test_eval_crosspop_cli.py."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from raksha.domain import EXPRESSION_CLASSES
from raksha.ml.evaluation.bootstrap import cluster_ids, share_interval
from raksha.ml.evaluation.breakdown import breakdown, labels_from_column
from raksha.ml.evaluation.datasets import (
    DatasetError,
    FaceDataset,
    concat,
    guess_format,
    observer_targets,
    read_dataset,
    read_labelled,
)
from raksha.ml.evaluation.runner import select_split
from raksha.ml.evaluation.splits import (
    KNOWN_RULES,
    SplitError,
    SplitRule,
    assign_splits,
    rule_for,
    subject_column,
)

C = {name: i for i, name in enumerate(EXPRESSION_CLASSES)}


def _write_labels(root: Path, lines: list[str], name: str = "labels.csv") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- the labels-layout reader ----------------------------------------------------------------

#: Three colours (RGB) of the palette images: red, blue, green, in vertical bands.
PALETTE = [(255, 0, 0), (0, 0, 255), (0, 255, 0)]


def _palette_image() -> Image.Image:
    idx = np.zeros((48, 48), dtype=np.uint8)
    idx[:, 16:32] = 1
    idx[:, 32:] = 2
    im = Image.fromarray(idx, mode="P")
    im.putpalette([v for rgb in PALETTE for v in rgb] + [0] * (3 * (256 - len(PALETTE))))
    return im


def _palette_bgr() -> np.ndarray:
    out = np.zeros((48, 48, 3), dtype=np.uint8)
    for k, (r, g, b) in enumerate(PALETTE):
        out[:, 16 * k : 16 * (k + 1)] = (b, g, r)
    return out


def _colour_face(seed: int) -> np.ndarray:
    """A smooth colour image (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:48, 0:48]
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(1, 4, 3)
    return np.stack([x * a, y * b, (x + y) * c], axis=-1).clip(0, 255).astype(np.uint8)


@pytest.fixture()
def formats_set(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """One image per format, with the BGR pixels each should read as."""
    root = tmp_path / "formats"
    (root / "img").mkdir(parents=True)
    grey = np.tile(np.arange(0, 240, 5, dtype=np.uint8), (48, 1))
    cv2.imwrite(str(root / "img" / "grey.png"), grey)
    cv2.imwrite(str(root / "img" / "photo.jpg"), _colour_face(1), [cv2.IMWRITE_JPEG_QUALITY, 98])
    cv2.imwrite(str(root / "img" / "scan.tiff"), _colour_face(2))
    _palette_image().save(root / "img" / "palette.png")
    _palette_image().save(root / "img" / "anim.gif")
    # PCX: a palette format OpenCV does not read, so it goes through the Pillow fallback
    _palette_image().save(root / "img" / "old.pcx")
    expected = {
        "img/grey.png": cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR),
        "img/photo.jpg": _colour_face(1),
        "img/scan.tiff": _colour_face(2),
        "img/palette.png": _palette_bgr(),
        "img/anim.gif": _palette_bgr(),
        "img/old.pcx": _palette_bgr(),
    }
    labels = ["neutral", "happy", "Angry", "sad", "fearful", "surprised"]
    rows = [f"{f},{lab}" for f, lab in zip(expected, labels, strict=True)]
    _write_labels(root, ["file,label", *rows])
    return root, expected


def test_labels_layout_reads_every_promised_format(
    formats_set: tuple[Path, dict[str, np.ndarray]],
) -> None:
    root, expected = formats_set
    assert cv2.imread(str(root / "img" / "old.pcx")) is None  # really the Pillow path
    colour = read_labelled(root, color=True)
    assert colour.names == tuple(expected)
    assert colour.images.shape == (6, 48, 48, 3)
    for i, (name, want) in enumerate(expected.items()):
        tol = 4 if name.endswith(".jpg") else 0
        diff = np.abs(colour.images[i].astype(int) - want.astype(int)).max()
        assert diff <= tol, f"{name}: off by {diff}"
    grey = read_labelled(root)
    assert grey.images.shape == (6, 48, 48)
    for i, (name, want) in enumerate(expected.items()):
        want_grey = cv2.cvtColor(want, cv2.COLOR_BGR2GRAY).astype(int)
        tol = 4 if name.endswith(".jpg") else 1  # decoders round the grey conversion apart
        diff = np.abs(grey.images[i].astype(int) - want_grey).max()
        assert diff <= tol, f"{name}: off by {diff}"


def test_label_aliases_and_case_map_onto_the_eight_classes(
    formats_set: tuple[Path, dict[str, np.ndarray]],
) -> None:
    data = read_labelled(formats_set[0])
    want = ["neutral", "happiness", "anger", "sadness", "fear", "surprise"]
    assert data.labels.tolist() == [C[w] for w in want]
    np.testing.assert_array_equal(data.targets, np.eye(8, dtype=np.float32)[data.labels])
    assert data.columns == {} and data.no_face == ()


def test_non_square_images_are_centre_cut_not_squashed(tmp_path: Path) -> None:
    wide = np.zeros((64, 192), dtype=np.uint8)
    wide[:, 64:128] = 255  # black | white | black: the centre square is all white
    tall = np.full((160, 64), 50, dtype=np.uint8)
    tall[48:112] = 200  # the centre square of the tall image is all 200
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    cv2.imwrite(str(tmp_path / "tall.png"), tall)
    _write_labels(tmp_path, ["file,label", "wide.png,neutral", "tall.png,neutral"])
    data = read_labelled(tmp_path, size=48)
    assert data.images.shape == (2, 48, 48)
    assert (data.images[0] == 255).all()  # squashed, a third of it would be black
    assert (data.images[1] == 200).all()


def test_metadata_is_merged_by_file_whatever_its_row_order(tmp_path: Path) -> None:
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((48, 48), 40 * i, np.uint8))
    # labels.csv written with a byte-order mark and spaces in the header, as spreadsheets do
    (tmp_path / "labels.csv").write_text(
        "file, label ,note\nf0.png,neutral,a\nf1.png,fear,b\nf2.png,sadness,c\nf3.png,happy,d\n",
        encoding="utf-8-sig",
    )
    _write_labels(
        tmp_path,
        [
            "file,performer,label,region",
            "f3.png,p3,anger,south",  # metadata's own label column is not a second label
            "unlisted.png,px,fear,none",  # not in labels.csv: ignored
            "f1.png,p1,neutral,north",
            "f0.png,p0,neutral,north",
            # f2.png has no metadata row: its values are blank
        ],
        name="metadata.csv",
    )
    data = read_labelled(tmp_path)
    assert data.names == ("f0.png", "f1.png", "f2.png", "f3.png")
    assert data.labels.tolist() == [C["neutral"], C["fear"], C["sadness"], C["happiness"]]
    assert set(data.columns) == {"note", "performer", "region"}
    assert data.column("performer") == ("p0", "p1", "", "p3")
    assert data.column("region") == ("north", "north", "", "south")
    assert data.column("note") == ("a", "b", "c", "d")
    assert data.column("label") is None
    assert [int(img[0, 0]) for img in data.images] == [0, 40, 80, 120]  # rows stay with files
    sub = data.subset(np.array([3, 1]))
    assert sub.names == ("f3.png", "f1.png") and sub.column("performer") == ("p3", "p1")


def test_unknown_label_is_an_error_naming_the_line(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 48), np.uint8))
    _write_labels(tmp_path, ["file,label", "a.png,neutral", "a.png,joy"])
    with pytest.raises(DatasetError, match=r"labels\.csv:3: unknown label 'joy'"):
        read_labelled(tmp_path)


def test_unknown_label_after_a_blank_line_names_the_right_line(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 48), np.uint8))
    _write_labels(tmp_path, ["file,label", "a.png,neutral", "", "a.png,joy"])
    with pytest.raises(DatasetError, match=r"labels\.csv:4: unknown label 'joy'"):
        read_labelled(tmp_path)


def test_labels_layout_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"labels\.csv is missing"):
        read_labelled(tmp_path)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 48), np.uint8))
    _write_labels(tmp_path, ["file,emotion", "a.png,fear"])
    with pytest.raises(DatasetError, match="must name file, label; it lacks label"):
        read_labelled(tmp_path)
    _write_labels(tmp_path, ["file,label", "a.png,fear", "sub/nope.png,fear"])
    with pytest.raises(DatasetError, match=r"sub/nope\.png does not exist"):
        read_labelled(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    _write_labels(tmp_path, ["file,label", "notes.txt,fear"])
    with pytest.raises(DatasetError, match=r"notes\.txt is not an image we can read"):
        read_labelled(tmp_path)
    _write_labels(tmp_path, ["file,label"])
    with pytest.raises(DatasetError, match="lists no images"):
        read_labelled(tmp_path)


def test_guess_format_prefers_ferplus_votes_over_a_labels_file(tmp_path: Path) -> None:
    assert guess_format(tmp_path) == "folders"
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 48), np.uint8))
    _write_labels(tmp_path, ["file,label", "a.png,happy"])
    assert guess_format(tmp_path) == "labels"
    assert read_dataset(tmp_path).labels.tolist() == [C["happiness"]]
    # FER+ votes: fear by majority; a FER+ folder may carry a labels.csv of its own
    (tmp_path / "label.csv").write_text('a.png,"(0, 0, 48, 48)",0,0,0,0,0,0,9,0,0,0\n')
    assert guess_format(tmp_path) == "ferplus"
    assert read_dataset(tmp_path).labels.tolist() == [C["fear"]]


def _tiny(names: tuple[str, ...], columns: dict[str, tuple[str, ...]], no_face=()) -> FaceDataset:
    n = len(names)
    labels = np.arange(n, dtype=np.int64) % 8
    return FaceDataset(
        names=names,
        images=np.zeros((n, 4, 4), np.uint8),
        labels=labels,
        targets=np.eye(8, dtype=np.float32)[labels],
        columns=columns,
        no_face=tuple(no_face),
    )


def test_concat_blanks_the_columns_a_part_lacks() -> None:
    a = _tiny(("a0", "a1"), {"performer": ("p", "q")}, no_face=("a9",))
    b = _tiny(("b0",), {"movie": ("m",)}, no_face=("b8", "b9"))
    both = concat([a, b])
    assert both.names == ("a0", "a1", "b0")
    assert both.columns == {"movie": ("", "", "m"), "performer": ("p", "q", "")}
    assert both.no_face == ("a9", "b8", "b9")
    assert both.labels.tolist() == [0, 1, 0]


def test_observer_targets_mix_votes_into_emotional_faces_only() -> None:
    names = ("neutral", "fear")
    labels = np.array([C["neutral"], C["fear"]])
    cols = {f"share_{c}": ("", "") for c in ("happiness", "sadness", "fear", "surprise")}
    cols["share_sadness"] = ("0.5", "0.25")
    cols["share_fear"] = ("0.5", "0.25")
    cols["share_surprise"] = ("", "0.5")
    data = FaceDataset(
        names, np.zeros((2, 4, 4), np.uint8), labels, np.eye(8, dtype=np.float32)[labels], cols
    )
    mixed = observer_targets(data, 0.4)
    np.testing.assert_array_equal(mixed.targets[0], np.eye(8)[C["neutral"]])  # no neutral vote
    want = 0.6 * np.eye(8)[C["fear"]]
    want[[C["sadness"], C["fear"], C["surprise"]]] += 0.4 * np.array([0.25, 0.25, 0.5])
    np.testing.assert_allclose(mixed.targets[1], want, rtol=1e-6)
    assert observer_targets(data, 0.0) is data


# --- breakdowns and intervals, by hand ---------------------------------------------------------

WEIGHTS = {"fear": 1.0, "sadness": 0.6, "anger": 0.3, "disgust": 0.3}
THRESHOLD = 0.55

#: group, subject, label, observers' label, {class: prob}. Evidence = sum weight * prob; a face
#: is scored as distress when its evidence reaches 0.55.
TOY = [
    ("A", "s1", "fear", "fear", {"fear": 0.9, "neutral": 0.1}),  # right, scored (.9)
    ("A", "s1", "sadness", "sad", {"sadness": 0.95, "neutral": 0.05}),  # right, scored (.57)
    ("A", "s1", "neutral", "", {"neutral": 0.8, "sadness": 0.2}),  # right, not (.12)
    ("A", "s2", "fear", "surprised", {"surprise": 0.7, "fear": 0.3}),  # wrong, not (.3)
    ("A", "s2", "neutral", "neutral", {"fear": 0.6, "neutral": 0.4}),  # wrong, scored (.6)
    ("A", "s2", "happiness", "happy", {"happiness": 1.0}),  # right, not
    ("B", "s3", "sadness", "sadness", {"neutral": 0.55, "sadness": 0.45}),  # wrong, not (.27)
    ("B", "s3", "fear", "surprise", {"fear": 0.7, "surprise": 0.3}),  # right, scored (.7)
    ("B", "s3", "neutral", "", {"neutral": 1.0}),  # right, not
    ("B", "s3", "anger", "angry", {"anger": 1.0}),  # right, not (.3; anger is not pooled)
    ("B", "s3", "", "fear", {"fear": 1.0}),  # no label: out of every share, scored
]


def _toy() -> tuple[np.ndarray, np.ndarray, dict[str, tuple[str, ...]]]:
    probs = np.zeros((len(TOY), 8), dtype=np.float32)
    for i, (*_, p) in enumerate(TOY):
        for c, v in p.items():
            probs[i, C[c]] = v
    labels = np.array([C[t[2]] if t[2] else -1 for t in TOY], dtype=np.int64)
    columns = {
        "group": tuple(t[0] for t in TOY),
        "subject": tuple(t[1] for t in TOY),
        "observers": tuple(t[3] for t in TOY),
    }
    return probs, labels, columns


def _doc(**kw: object) -> dict:
    probs, labels, columns = _toy()
    return breakdown(probs, labels, columns, WEIGHTS, THRESHOLD, subject="subject", **kw)


def test_breakdown_by_group_equals_hand_counts() -> None:
    doc = _doc(group_by="group", resamples=200)
    assert doc["distress_recall_pooled"] == pytest.approx(3 / 5)  # faces 0, 1, 7 of 0 1 3 6 7
    assert doc["distress_pooled_classes"] == ["fear", "sadness"]
    assert doc["subjects"] == {"column": "subject", "count": 3}
    assert doc["group_by"] == "group"
    assert set(doc["groups"]) == {"A", "B"}
    a, b = doc["groups"]["A"], doc["groups"]["B"]
    assert (a["n"], b["n"]) == (6, 4)  # the unlabelled face is in no share
    assert a["accuracy"] == pytest.approx(4 / 6) and b["accuracy"] == pytest.approx(3 / 4)
    assert a["distress"] == pytest.approx(2 / 3) and b["distress"] == pytest.approx(1 / 2)
    assert a["neutral_as_distress"] == pytest.approx(1 / 2) and b["neutral_as_distress"] == 0.0
    assert a["happy_as_distress"] == 0.0 and b["happy_as_distress"] is None  # no happy face
    assert a["distress_by_class"] == {"fear": 0.5, "sadness": 1.0, "anger": None}
    assert b["distress_by_class"] == {"fear": 1.0, "sadness": 0.0, "anger": 0.0}
    assert (a["n_distress_faces"], a["n_neutral_faces"]) == (3, 2)
    assert (b["n_distress_faces"], b["n_neutral_faces"]) == (2, 1)
    assert b["intervals"]["happy_as_distress"] is None
    for g in (a, b, {"intervals": doc["intervals"], "accuracy": 0.7, "distress": 0.6}):
        for key in ("accuracy", "distress"):
            lo, hi = g["intervals"][key]
            assert lo <= g[key] <= hi, (key, lo, g[key], hi)


def test_breakdown_without_the_group_column_has_no_groups() -> None:
    assert _doc(group_by="ethnicity", resamples=10)["groups"] == {}
    assert _doc(group_by="ethnicity", resamples=10)["group_by"] is None
    assert _doc(resamples=10)["groups"] == {}


def test_blank_group_values_are_a_group_of_their_own() -> None:
    probs, labels, columns = _toy()
    columns["group"] = ("", *columns["group"][1:])
    doc = breakdown(probs, labels, columns, WEIGHTS, THRESHOLD, group_by="group", resamples=10)
    assert set(doc["groups"]) == {"(blank)", "A", "B"}
    assert doc["groups"]["(blank)"]["n"] == 1 and doc["groups"]["A"]["n"] == 5


def test_second_label_column_is_measured_too() -> None:
    alt = _doc(label_column="observers", resamples=10)["alt_labels"]
    assert alt["column"] == "observers"
    assert alt["n"] == 9  # two blanks
    assert alt["recall"] == {
        "fear": 1.0,  # faces 0 and 10 predicted fear
        "sadness": 0.5,  # face 1 yes, face 6 (predicted neutral) no
        "surprise": 0.5,  # face 3 yes, face 7 (predicted fear) no
        "neutral": 0.0,  # face 4 predicted fear
        "happiness": 1.0,
        "anger": 1.0,
    }
    assert alt["distress_by_class"] == {"fear": 1.0, "sadness": 0.5, "anger": 0.0}
    assert alt["agreement_with_label"] == pytest.approx(6 / 8)  # faces 3 and 7 disagree
    assert labels_from_column(["Sad", " happy ", "joy", ""]).tolist() == [3, 1, -1, -1]


def test_cluster_ids_follow_subjects_and_blanks_stand_alone() -> None:
    ids = cluster_ids(["a", "b", "a", "", "", "b"], 6)
    assert ids.tolist() == [0, 1, 0, 2, 3, 1]
    assert cluster_ids(None, 4).tolist() == [0, 1, 2, 3]


def test_interval_is_the_share_when_every_cluster_is_alike() -> None:
    hit = np.array([1, 0, 0] * 5, dtype=bool)
    clusters = np.repeat(np.arange(5), 3)
    lo, hi = share_interval(hit, np.ones(15, bool), clusters, resamples=300)
    assert lo == pytest.approx(1 / 3) and hi == pytest.approx(1 / 3)


def test_interval_resamples_whole_subjects() -> None:
    # four subjects of three faces; only the first one's faces are hits: share 1/4, and any
    # resample of four subjects gives a share of k/4
    hit = np.array([1] * 3 + [0] * 9, dtype=bool)
    among = np.ones(12, dtype=bool)
    by_subject = cluster_ids([s for s in "abcd" for _ in range(3)], 12)
    lo, hi = share_interval(hit, among, by_subject, resamples=2000, seed=3)
    assert {lo, hi} <= {0.0, 0.25, 0.5, 0.75, 1.0}, (lo, hi)
    assert lo <= 0.25 <= hi
    assert (lo, hi) == (0.0, 0.75)  # P(3 or 4 of 4 draws are a) = 5 %, P(4 of 4) = 0.4 %
    faces = cluster_ids(None, 12)
    f_lo, f_hi = share_interval(hit, among, faces, resamples=2000, seed=3)
    assert f_hi - f_lo < hi - lo  # faces of one subject are not independent
    assert share_interval(hit, among, by_subject, resamples=2000, seed=3) == (lo, hi)
    others = {share_interval(hit, among, faces, resamples=50, seed=s) for s in range(6)}
    assert len(others) > 1  # the seed matters, so the equality above is determinism


def test_interval_is_undefined_without_rows_to_measure() -> None:
    lo, hi = share_interval(np.ones(3, bool), np.zeros(3, bool), cluster_ids(None, 3))
    assert math.isnan(lo) and math.isnan(hi)


# --- splits by subject -------------------------------------------------------------------------


def _people(n_subjects: int, per: int = 3) -> dict[str, tuple[str, ...]]:
    return {"performer": tuple(f"p{i:02d}" for i in range(n_subjects) for _ in range(per))}


def test_splits_are_deterministic_whole_subject_and_in_the_configured_shares() -> None:
    cols = _people(100)
    rule = SplitRule("performer")
    split = assign_splits(cols, rule)
    np.testing.assert_array_equal(split, assign_splits(cols, rule))
    by_subject: dict[str, set[str]] = {}
    for s, where in zip(cols["performer"], split, strict=True):
        by_subject.setdefault(s, set()).add(str(where))
    assert all(len(v) == 1 for v in by_subject.values())
    counts = {k: sum(v == {k} for v in by_subject.values()) for k in ("train", "tune", "test")}
    assert counts == {"train": 60, "tune": 15, "test": 25}
    # a subject's split does not depend on the order of the rows
    order = np.random.default_rng(0).permutation(len(split))
    shuffled = assign_splits({"performer": tuple(cols["performer"][i] for i in order)}, rule)
    np.testing.assert_array_equal(shuffled, split[order])
    # and depends on the salt only through the hash
    assert (assign_splits(cols, rule, salt="other") != split).any()


def test_sfew_rule_keeps_every_val_row_in_test() -> None:
    movies = [f"m{i}" for i in range(10)]
    cols = {
        "movie": tuple([*movies, "v1", "v1", "v2"]),
        "sfew_split": tuple(["Train"] * 10 + ["Val"] * 3),
    }
    rule = rule_for("sfew2-aligned", cols)
    assert rule is KNOWN_RULES["sfew2-aligned"]
    split = assign_splits(cols, rule).tolist()
    assert split[10:] == ["test"] * 3
    assert sorted(split[:10]) == ["train"] * 8 + ["tune"] * 2  # Train movies: 80 / 20


def test_a_subject_with_held_out_rows_stays_in_one_split() -> None:
    cols = {
        "movie": ("a", "b", "c", "shared", "shared"),
        "sfew_split": ("Train", "Train", "Train", "Train", "Val"),
    }
    split = assign_splits(cols, KNOWN_RULES["sfew2-aligned"])
    assert split[3] == split[4]


def test_subject_column_and_rule_for_unknown_sets() -> None:
    cols = {"movie": ("m",), "performer": ("p",), "subject": ("s",)}
    assert subject_column(cols) == "subject"
    assert subject_column({"movie": ("m",)}) == "movie"
    assert subject_column({"region": ("x",)}) is None
    assert subject_column(cols, "movie") == "movie"
    with pytest.raises(SplitError, match="no column 'person'"):
        subject_column(cols, "person")
    assert rule_for("my-set", {"person": ("x",)}) == SplitRule("person")
    assert rule_for("my-set", {"region": ("x",)}) is None
    with pytest.raises(SplitError, match="no such column"):
        assign_splits({"region": ("x",)}, SplitRule("performer"))


def test_select_split_takes_whole_subjects_and_refuses_what_it_cannot_split() -> None:
    cols = _people(20)
    data = _tiny(tuple(f"f{i}" for i in range(60)), cols)
    parts = {s: select_split(data, "my-set", s) for s in ("train", "tune", "test")}
    assert sum(len(p) for p in parts.values()) == 60
    seen = [set(p.columns["performer"]) for p in parts.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert select_split(data, "my-set", "all") is data
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        select_split(data, "my-set", "val")
    with pytest.raises(DatasetError, match="names no subject"):
        select_split(_tiny(("a",), {}), "my-set", "test")
