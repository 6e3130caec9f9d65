"""Cross-population evaluation with the real detector and model: `--detect` on face photos
placed in larger canvases (crops centred on the face, a blank image listed in no_face), and
`raksha eval expression` end to end on tiny labels-layout sets built here (several datasets
side by side, --group-by, --label-column, --report, refused duplicate names)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from raksha.domain import EXPRESSION_CLASSES, FaceDetections
from raksha.expression.preprocess import crop_faces
from raksha.expression.spec import ExpressionSpec
from raksha.ml.evaluation.datasets import DatasetError, read_dataset
from raksha.ml.evaluation.detect_crop import DetectCropper, build_detect_cropper
from raksha.ml.evaluation.runner import EvalOptions, load_eval_set

#: Pinned rather than the default, so that these tests do not move with the default model.
MODEL = "raksha-fer-resnet-int8"
C = {name: i for i, name in enumerate(EXPRESSION_CLASSES)}
GREY = 128


@pytest.fixture(scope="module")
def spec(models_dir: Path) -> ExpressionSpec:
    from raksha.expression.factory import resolve_expression_model

    return resolve_expression_model(MODEL, models_dir)[0]


@pytest.fixture(scope="module")
def cropper(spec: ExpressionSpec, models_dir: Path) -> DetectCropper:
    return build_detect_cropper(spec.crop, spec.input.size, models_dir)


def _photo(faces_dir: Path, name: str) -> np.ndarray:
    img = cv2.imread(str(faces_dir / name))
    assert img is not None, name
    return img


def _paste(canvas: np.ndarray, photo: np.ndarray, side: int, x: int, y: int) -> float:
    """Paste ``photo`` scaled to a long side of ``side`` at (x, y); returns the scale."""
    h, w = photo.shape[:2]
    k = side / max(h, w)
    small = cv2.resize(photo, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return k


def _largest_face(cropper: DetectCropper, photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    faces = cropper.detector.detect(photo)
    assert len(faces) >= 1
    i = int(np.argmax(faces.widths * faces.heights))
    return faces.boxes[i].astype(np.float64), faces.landmarks[i].astype(np.float64)


#: file -> (photo, canvas height and width, long side of the pasted photo, x, y, label)
PLACED = {
    "astronaut_right.png": ("astronaut.jpg", (480, 640), 256, 360, 200, "happiness"),
    "idA_left.jpg": ("idA_1.jpg", (480, 640), 300, 30, 150, "neutral"),
    "idB_low_portrait.png": ("idB_1.jpg", (640, 360), 220, 120, 380, "sadness"),
}


@pytest.fixture(scope="module")
def detect_set(
    tmp_path_factory: pytest.TempPathFactory, faces_dir: Path, cropper: DetectCropper
) -> tuple[Path, dict[str, np.ndarray]]:
    """Face photos in grey canvases, a tight face crop, two faces of different sizes, a blank
    image; and for each image with a face the box (canvas pixels) of the face it should crop,
    found by the detector on the photo alone and mapped into the canvas."""
    root = tmp_path_factory.mktemp("detect") / "placed"
    root.mkdir()
    boxes: dict[str, np.ndarray] = {}
    rows = []
    for file, (photo_name, hw, side, x, y, label) in PLACED.items():
        photo = _photo(faces_dir, photo_name)
        canvas = np.full((*hw, 3), GREY, np.uint8)
        k = _paste(canvas, photo, side, x, y)
        box, _ = _largest_face(cropper, photo)
        boxes[file] = box * k + [x, y, x, y]
        cv2.imwrite(str(root / file), canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append(f"{file},{label}")
    # the largest face wins: the astronaut (about 57 x 66 px) over a smaller idB (about 35 x 45)
    two = np.full((480, 640, 3), GREY, np.uint8)
    k = _paste(two, _photo(faces_dir, "astronaut.jpg"), 300, 320, 100)
    boxes["two_faces.png"] = _largest_face(cropper, _photo(faces_dir, "astronaut.jpg"))[0] * k
    boxes["two_faces.png"] += [320, 100, 320, 100]
    _paste(two, _photo(faces_dir, "idB_1.jpg"), 110, 30, 30)
    assert len(cropper.detector.detect(two)) == 2  # both faces are seen; the test is the choice
    cv2.imwrite(str(root / "two_faces.png"), two)
    rows.append("two_faces.png,fear")
    # a tight 48 px crop, as FER+ stores faces: enlarged and padded before detection
    photo = _photo(faces_dir, "idA_1.jpg")
    x0, y0, x1, y1 = _largest_face(cropper, photo)[0].astype(int)
    cv2.imwrite(str(root / "tight.png"), cv2.resize(photo[y0:y1, x0:x1], (48, 48)))
    rows.append("tight.png,neutral")
    cv2.imwrite(str(root / "blank.png"), np.full((480, 640, 3), GREY, np.uint8))
    rows.append("blank.png,neutral")
    (root / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    return root, boxes


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_detect_crops_the_largest_face_and_lists_images_without_one(
    detect_set: tuple[Path, dict[str, np.ndarray]], cropper: DetectCropper, spec: ExpressionSpec
) -> None:
    root, boxes = detect_set
    data = read_dataset(root, cropper=cropper)
    faces = [*PLACED, "two_faces.png", "tight.png"]
    assert data.names == tuple(faces)
    assert data.no_face == ("blank.png",)
    assert data.images.shape == (len(faces), 48, 48)
    want_labels = [placed[-1] for placed in PLACED.values()] + ["fear", "neutral"]
    assert data.labels.tolist() == [C[c] for c in want_labels]
    for file, box in boxes.items():
        got = data.images[data.names.index(file)].astype(np.float64)
        image = cv2.imread(str(root / file))
        # the reader hands the whole image to the cropper and keeps its crop, in grey
        np.testing.assert_array_equal(got, _grey(cropper(image)))
        # the crop is the face: close to the crop of the face's own box (found on the photo
        # alone), unlike the whole image resized or a crop beside the face
        side = float(max(box[2] - box[0], box[3] - box[1]))
        want = _grey(crop_faces(image, _faces(box), spec.crop, 48)[0])
        moved = box + np.array([side, 0, side, 0])  # one face width to the right
        beside = _grey(crop_faces(image, _faces(moved), spec.crop, 48)[0])
        whole = cv2.resize(_grey(image), (48, 48), interpolation=cv2.INTER_AREA)
        assert _corr(got, want) > 0.8, file
        assert _corr(got, want) > max(_corr(got, whole), _corr(got, beside)) + 0.3, file
        # and the box the cropper found, back in image pixels, is centred on that face
        prepared = cropper.prepare(image)
        found = cropper.main_face(prepared).boxes[0].astype(np.float64)
        pad_y, pad_x = (
            (prepared.shape[0] - image.shape[0]) // 2,
            (prepared.shape[1] - image.shape[1]) // 2,
        )
        centre = (found[:2] + found[2:]) / 2 - [pad_x, pad_y]
        assert np.abs(centre - (box[:2] + box[2:]) / 2).max() < 0.15 * side, (file, centre, box)


def test_detect_finds_faces_in_tight_48_px_crops(
    data_dir: Path, tmp_path: Path, cropper: DetectCropper
) -> None:
    """FER+ stores 48 px crops that the face fills: the cropper enlarges and pads them
    before detection (measured on the 91 majority-labelled faces of the first 100 rows: 86
    found; 55 by the detector on the crops as they are)."""
    from raksha.ml.evaluation.datasets import read_ferplus

    src = data_dir / "ferplus-valid"
    rows = (src / "label.csv").read_text().splitlines()[:100]
    (tmp_path / "images").mkdir()
    for row in rows:
        name = row.split(",", 1)[0]
        (tmp_path / "images" / name).symlink_to((src / "images" / name).resolve())
    (tmp_path / "label.csv").write_text("\n".join(rows) + "\n")
    listed = len(read_ferplus(tmp_path))
    data = read_ferplus(tmp_path, cropper=cropper)
    assert len(data) + len(data.no_face) == listed
    assert len(data) >= 0.85 * listed, (
        f"faces found in {len(data)} of {listed}"
    )  # measured: 86 of 91
    assert data.images.shape[1:] == (48, 48)


def _faces(box: np.ndarray) -> FaceDetections:
    return FaceDetections(
        boxes=np.asarray(box, np.float32)[None],
        scores=np.ones(1, np.float32),
        landmarks=np.zeros((1, 5, 2), np.float32),
    )


def test_eval_detect_reports_images_and_faces_found(
    detect_set: tuple[Path, dict[str, np.ndarray]], models_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from raksha.cli import app

    root, _ = detect_set
    out = tmp_path / "detect.json"
    res = CliRunner().invoke(
        app,
        [
            "eval", "expression", "--model", MODEL, "--dataset", str(root), "--detect",
            "--bootstrap", "20", "--models", str(models_dir), "--json", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert "datasets" not in doc  # one dataset: the flat document
    assert (doc["n_images"], doc["no_face"], doc["n"]) == (6, 1, 5)
    assert doc["detect"] is True and doc["split"] == "all"
    assert sum(m["n"] for m in doc["per_class"].values()) == 5


# --- --split with --detect: images without a face and the split -----------------------------

#: Five performers: p0 is the test split's only subject when all five are present
#: (SplitRule("performer"), 60 / 15 / 25 % of subjects); p1 is in train.
SPLIT_OF = {"p0": "test", "p1": "train", "p2": "tune", "p3": "train", "p4": "train"}


def _performer_set(root: Path, faces_dir: Path, rows: list[tuple[str, str]]) -> Path:
    """A labels-layout set: (file, performer) rows; files named blank* are blank images,
    the others face photos."""
    root.mkdir(parents=True)
    photos = ["astronaut.jpg", "idA_1.jpg", "idA_2.jpg", "idB_1.jpg"]
    for i, (file, _) in enumerate(rows):
        if file.startswith("blank"):
            cv2.imwrite(str(root / file), np.full((240, 240, 3), GREY, np.uint8))
        else:
            (root / file).write_bytes((faces_dir / photos[i % len(photos)]).read_bytes())
    (root / "labels.csv").write_text(
        "file,label,performer\n" + "".join(f"{f},neutral,{p}\n" for f, p in rows)
    )
    return root


def test_the_split_of_known_rules_matches_the_constant_above() -> None:
    from raksha.ml.evaluation.splits import SplitRule, assign_splits

    got = assign_splits({"performer": tuple(SPLIT_OF)}, SplitRule("performer"))
    assert dict(zip(SPLIT_OF, got.tolist(), strict=True)) == SPLIT_OF


def test_detect_with_a_split_counts_only_that_splits_images(
    tmp_path: Path, faces_dir: Path, models_dir: Path
) -> None:
    from raksha.ml.evaluation.runner import evaluate_many

    rows = [("f0.jpg", "p0"), ("f1.jpg", "p1"), ("blank1.png", "p1")]
    rows += [(f"f{i}.jpg", f"p{i}") for i in (2, 3, 4)]
    root = _performer_set(tmp_path / "set", faces_dir, rows)
    opts = EvalOptions(detect=True, split="test", resamples=0, face_sizes=())
    (r,) = evaluate_many(MODEL, [root], opts, models_dir=models_dir)
    assert r.n == 1  # p0's one face
    assert (r.extra["n_images"], r.extra["no_face"]) == (1, 0)  # the blank is p1's, in train


def test_detect_never_moves_a_face_into_another_split(
    tmp_path: Path, faces_dir: Path, cropper: DetectCropper
) -> None:
    rows = [("blank0.png", "p0")] + [(f"f{i}.jpg", f"p{i}") for i in (1, 2, 3, 4)]
    root = _performer_set(tmp_path / "set", faces_dir, rows)
    plain = set(load_eval_set(root, EvalOptions(split="test"), None).names)
    assert plain == {"blank0.png"}
    try:
        found = set(load_eval_set(root, EvalOptions(detect=True, split="test"), cropper).names)
    except DatasetError:  # no face in the test split: nothing to evaluate
        found = set()
    assert found <= plain, f"{found - plain} is not in the test split"


# --- several datasets side by side -----------------------------------------------------------

#: file, label, performer, region, observers' label; setA has a region column, setB has not.
SET_A = [
    ("a0.jpg", "fear", "p1", "north", "surprise"),
    ("a1.jpg", "sadness", "p1", "north", "sad"),
    ("a2.jpg", "neutral", "p2", "north", ""),
    ("a3.jpg", "happiness", "p2", "north", "happy"),
    ("a4.jpg", "fear", "p3", "south", "fear"),
    ("a5.jpg", "neutral", "p3", "south", ""),
]
SET_B = [("b0.jpg", "anger"), ("b1.jpg", "neutral"), ("b2.jpg", "sadness"), ("b3.jpg", "happy")]
PHOTOS = ["astronaut.jpg", "idA_1.jpg", "idA_2.jpg", "idB_1.jpg", "women_4faces_smiling.jpg"]


def _copy_photos(root: Path, files: list[str], faces_dir: Path) -> None:
    root.mkdir(parents=True)
    for i, f in enumerate(files):
        (root / f).write_bytes((faces_dir / PHOTOS[i % len(PHOTOS)]).read_bytes())


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("sets")
    a, b = base / "setA", base / "setB"
    _copy_photos(a, [r[0] for r in SET_A], faces_dir)
    (a / "labels.csv").write_text("file,label\n" + "".join(f"{r[0]},{r[1]}\n" for r in SET_A))
    (a / "metadata.csv").write_text(
        "file,performer,region,observers\n"
        + "".join(f"{f},{p},{g},{o}\n" for f, _, p, g, o in reversed(SET_A))
    )
    _copy_photos(b, [r[0] for r in SET_B], faces_dir)
    (b / "labels.csv").write_text("file,label\n" + "".join(f"{f},{lab}\n" for f, lab in SET_B))
    return a, b


GROUP_KEYS = {
    "n",
    "accuracy",
    "distress",
    "neutral_as_distress",
    "happy_as_distress",
    "distress_by_class",
    "n_distress_faces",
    "n_neutral_faces",
    "intervals",
}


@pytest.mark.slow
def test_eval_two_datasets_with_groups_json_and_report(
    two_sets: tuple[Path, Path], models_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from raksha.cli import app

    a, b = two_sets
    out, rep = tmp_path / "out.json", tmp_path / "report"
    res = CliRunner().invoke(
        app,
        [
            "eval", "expression", "--model", MODEL, "--dataset", str(a), "--dataset", str(b),
            "--group-by", "region", "--label-column", "observers", "--bootstrap", "50",
            "--models", str(models_dir), "--json", str(out), "--report", str(rep),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert list(doc) == ["datasets"]
    assert list(doc["datasets"]) == ["setA", "setB"]
    da, db = doc["datasets"]["setA"], doc["datasets"]["setB"]
    for d, n in ((da, len(SET_A)), (db, len(SET_B))):
        assert d["n"] == n and d["n_images"] == n and d["no_face"] == 0
        assert {"accuracy", "per_class", "distress", "distress_recall_pooled", "intervals"} <= set(
            d
        )
        assert len(d["operating_curve"]) == 19
    assert da["group_by"] == "region"
    assert set(da["groups"]) == {"north", "south"}
    north, south = da["groups"]["north"], da["groups"]["south"]
    assert set(north) == GROUP_KEYS and set(south) == GROUP_KEYS
    assert (north["n"], north["n_distress_faces"], north["n_neutral_faces"]) == (4, 2, 1)
    assert (south["n"], south["n_distress_faces"], south["n_neutral_faces"]) == (2, 1, 1)
    assert south["happy_as_distress"] is None  # no happy face in the south group
    # the groups split the faces: their accuracies average back to the whole set's
    assert (4 * north["accuracy"] + 2 * south["accuracy"]) / 6 == pytest.approx(da["accuracy"])
    assert da["subjects"] == {"column": "performer", "count": 3}
    assert da["alt_labels"]["n"] == 4 and set(da["alt_labels"]["recall"]) == {
        "surprise",
        "sadness",
        "happiness",
        "fear",
    }
    # setB has no region column: no groups, and no second label
    assert db["groups"] == {} and db["group_by"] is None
    assert "alt_labels" not in db
    assert db["subjects"] == {"column": None, "count": len(SET_B)}

    page = (rep / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images
    for src in images:
        png = rep / src
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
    assert "setA/groups.png" in images and "setA/confusion.png" in images
    assert "setB/confusion.png" in images and "setB/groups.png" not in images
    assert "By region" in page


@pytest.mark.slow
def test_eval_refuses_two_datasets_with_the_same_folder_name(
    two_sets: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = two_sets
    twin = tmp_path / "other" / a.name
    twin.mkdir(parents=True)
    proc = subprocess.run(
        [
            sys.executable, "-m", "raksha", "eval", "expression", "--model", MODEL,
            "--dataset", str(a), "--dataset", str(twin),
        ],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out, out
    assert proc.stderr.startswith("raksha: error: two --dataset folders have the same name")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
