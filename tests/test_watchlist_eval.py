"""The watchlist evaluation (raksha.ml.evaluation.watchlist): its metrics on toy scores worked
out by hand, the enrolment and search protocol on hand-made embeddings, and one run of
`raksha eval watchlist` on the real development set."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from raksha.ml.evaluation.watchlist import (
    ImageRecord,
    Searches,
    WatchlistDataError,
    enrol,
    evaluate_records,
    operating_points,
    read_identities,
    recommend,
    roc_auc,
    roc_points,
    search_all,
    threshold_for_rate,
    verification,
    zero_count_upper95,
)

# --- metrics by hand ------------------------------------------------------------------------


def test_auc_counts_ordered_pairs_and_half_ties() -> None:
    # Positives 0.9, 0.7; negatives 0.8, 0.6: 0.9 beats both, 0.7 beats 0.6 only -> 3 of 4.
    assert roc_auc([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert roc_auc([0.1, 0.9], [0, 1]) == 1.0
    assert math.isnan(roc_auc([0.3, 0.4], [1, 1]))


def test_roc_points_step_through_each_distinct_score() -> None:
    fpr, tpr, thr = roc_points([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])
    assert list(thr) == [np.inf, 0.9, 0.8, 0.7, 0.6]
    assert list(tpr) == [0, 0.5, 0.5, 1, 1]
    assert list(fpr) == [0, 0, 0.5, 0.5, 1]


def test_threshold_for_a_target_rate() -> None:
    negatives = [0.05 * i for i in range(1, 11)]  # 0.05 .. 0.50
    # 20 % of 10: two may pass, so the threshold sits just above the third highest (0.40).
    t, observable = threshold_for_rate(negatives, 0.2)
    assert observable and 0.40 < t < 0.40 + 1e-9
    assert sum(n >= t for n in negatives) == 2
    # 1 % of 10 is not even one negative: just above the highest, not observable.
    t, observable = threshold_for_rate(negatives, 0.01)
    assert not observable and 0.50 < t < 0.50 + 1e-9
    assert threshold_for_rate([], 0.1) == (pytest.approx(float("nan"), nan_ok=True), False)
    with pytest.raises(ValueError):
        threshold_for_rate(negatives, 1.0)
    assert zero_count_upper95(61) == pytest.approx(1 - 0.05 ** (1 / 61))
    assert zero_count_upper95(61) == pytest.approx(0.0479, abs=1e-4)


def _toy() -> Searches:
    """Four known probes of two people, three unknown probes of three people."""
    return Searches(
        known_score=np.array([0.9, 0.6, 0.3, 0.8]),
        known_correct=np.array([True, True, True, False]),
        known_identity=("p1", "p1", "p2", "p2"),
        unknown_score=np.array([0.2, 0.5, 0.7]),
        unknown_identity=("p3", "p4", "p5"),
        comparisons=6,
    )


def test_rates_at_a_threshold_by_hand() -> None:
    r = _toy().rates(0.55)
    # Known at >= 0.55: 0.9 (right), 0.6 (right), 0.8 (wrong person); unknown: 0.7.
    assert r == {"threshold": 0.55, "tmr": 0.5, "misidentification": 0.25, "fmr": 1 / 3}
    assert _toy().rates(0.95) == {
        "threshold": 0.95,
        "tmr": 0.0,
        "misidentification": 0.0,
        "fmr": 0.0,
    }
    assert _toy().rank1_accuracy() == 0.75


def test_operating_points_and_the_recommendation_by_hand() -> None:
    s = _toy()
    (point,) = operating_points(s, [0.34], resamples=0)
    # 34 % of 3 unknowns: one may pass; the threshold is just above the second highest (0.5).
    assert point["observable"] and 0.5 < point["threshold"] < 0.5 + 1e-9
    assert point["fmr"] == pytest.approx(1 / 3)
    assert point["tmr"] == 0.5  # 0.9 and 0.6 are right and above; 0.8 is the wrong person
    assert point["lowest_observable_fmr"] == pytest.approx(1 / 3)
    assert all(math.isnan(x) for x in point["threshold_ci"])  # no resamples, no interval
    rec = recommend([point], s)
    assert rec["threshold"] == point["threshold"] and rec["tmr"] == 0.5
    # 0.1 % cannot be observed with three unknown probes: said so.
    (strict,) = operating_points(s, [0.001], resamples=0)
    assert not strict["observable"] and 0.7 < strict["threshold"] < 0.7 + 1e-9
    assert "cannot be observed with 3 unknown probes" in recommend([strict], s)["basis"]


def test_the_bootstrap_draws_whole_identities() -> None:
    # Every unknown probe of one person scores alike: any resample's threshold is just above
    # one of the people's scores, so the interval's ends are among them.
    s = Searches(
        known_score=np.array([0.9, 0.9]),
        known_correct=np.array([True, True]),
        known_identity=("a", "b"),
        unknown_score=np.array([0.3, 0.3, 0.3, 0.6, 0.6]),
        unknown_identity=("c", "c", "c", "d", "d"),
    )
    (p,) = operating_points(s, [0.001], resamples=300, seed=1)
    lo, hi = p["threshold_ci"]
    assert lo == pytest.approx(0.3) and hi == pytest.approx(0.6)
    assert p["tmr_ci"] == (1.0, 1.0)
    again = operating_points(s, [0.001], resamples=300, seed=1)[0]
    assert again["threshold_ci"] == p["threshold_ci"]  # seeded


def test_verification_summary_by_hand() -> None:
    v = verification([0.9, 0.8, 0.3, 0.2, 0.5], [1, 1, 0, 0, 0], targets=[0.34])
    assert v["genuine"] == 2 and v["impostor"] == 3
    assert v["auc"] == 1.0 and v["eer"] == 0.0 and v["best_accuracy"] == 1.0
    assert v["best_accuracy_threshold"] == pytest.approx(0.8)
    assert v["genuine_mean"] == pytest.approx(0.85) and v["impostor_max"] == pytest.approx(0.5)
    (tar,) = v["tar_at_far"]
    # One of three impostors may pass: just above 0.3; both genuine pairs pass.
    assert tar["observable"] and 0.3 < tar["threshold"] < 0.31 and tar["tar"] == 1.0


# --- the protocol on hand-made embeddings ---------------------------------------------------


def _rec(file: str, who: str, vec: list[float] | None, check: str | None = None) -> ImageRecord:
    emb = None
    if vec is not None:
        v = np.asarray(vec, np.float32)
        emb = v / np.linalg.norm(v)
    return ImageRecord(
        file, who, 0 if vec is None else 1, None if vec is None else 100.0, check, check, emb
    )


def test_enrolment_and_searches_on_a_toy_set() -> None:
    records = [
        _rec("a1", "ann", [1, 0, 0, 0], check="blurred"),  # refused: a1 is an attempt
        _rec("a2", "ann", [1, 0.1, 0, 0]),  # ann's template
        _rec("a3", "ann", [1, 0.3, 0, 0]),  # known probe
        _rec("b1", "ben", [0, 1, 0, 0]),  # ben's template
        _rec("b2", "ben", None),  # no face: a known probe that misses
        _rec("c1", "cat", [0, 0, 1, 0], check="too_small"),  # cat never enrols
        _rec("c2", "cat", [0.1, 0, 1, 0], check="turned"),
    ]
    templates, refused = enrol(records, per_identity=1)
    assert templates == {"ann": [1], "ben": [3]}
    assert [records[i].file for i in refused] == ["a1", "c1", "c2"]
    s = search_all(records, templates)
    assert s.known_identity == ("ann", "ann", "ben")  # a1 (refused, not a template) too
    assert list(s.known_correct) == [True, True, False]
    assert s.known_score[2] == -math.inf
    # Unknown: ann's 3 photos against {ben}, ben's 1 photo with a face against {ann}, cat's 2
    # against {ann, ben}.
    assert s.unknown_identity == ("ann", "ann", "ann", "ben", "cat", "cat")
    assert s.comparisons == 3 * 1 + 1 * 1 + 2 * 2
    assert s.unknown_score[0] == pytest.approx(0.0, abs=1e-6)  # a1 vs ben
    cos_c2_ann = float(np.dot([0.1, 0, 1, 0], [1, 0.1, 0, 0]) / (np.sqrt(1.01) * np.sqrt(1.01)))
    assert s.unknown_score[5] == pytest.approx(cos_c2_ann, abs=1e-6)

    pairs = [("a2", "a3", True), ("a2", "b1", False), ("a2", "b2", False)]
    result = evaluate_records(records, pairs, per_identity=1, targets=[0.01], resamples=50)
    out = result.to_json()
    assert out["enrolment"]["attempts"] == 5 and out["enrolment"]["refused"] == 3
    assert out["enrolment"]["failure_to_enrol_rate"] == pytest.approx(0.6)
    assert out["enrolment"]["identities_not_enrolled"] == ["cat"]
    assert out["quality"]["by_check"] == {"blurred": 1, "too_small": 1, "turned": 1}
    assert out["verification"]["skipped"] == 1 and out["verification"]["auc"] == 1.0
    # The smallest gallery an unknown search met (an enrolled person's, against the others):
    # the list size the measured FMR counts for (raksha.site.watchlist's gate).
    assert out["watchlist"]["gallery_size"] == 1
    json.dumps(out, allow_nan=False)  # no inf or nan in the JSON


def test_a_missing_set_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WatchlistDataError, match="not found"):
        read_identities(tmp_path / "nope")
    (tmp_path / "identities.csv").write_text("file,who\nx.jpg,a\n")
    with pytest.raises(WatchlistDataError, match="lacks the column"):
        read_identities(tmp_path)


# --- the command ----------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_watchlist_on_the_development_set(
    data_dir: Path, models_dir: Path, tmp_path: Path
) -> None:
    from raksha.cli import app

    data = data_dir / "deepface-identities"
    if not data.is_dir():
        msg = f"the development identity set is missing: {data}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    out = tmp_path / "wl.json"
    report = tmp_path / "report"
    res = CliRunner().invoke(
        app,
        [
            "eval", "watchlist", "--data", str(data), "--json", str(out),
            "--report", str(report), "--target-fmr", "0.001,0.01", "--target-fmr", "0.05",
            "--models", str(models_dir), "--resamples", "200", "--probe-face-px", "48",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "[61/61] images/img67.jpg" in res.output
    assert f"wrote results to {out}" in res.output
    got = json.loads(out.read_text())
    assert set(got) == {"meta", "quality", "enrolment", "verification", "watchlist"}
    assert got["meta"]["embedding_model"]["name"] == "mobileface-v2"
    assert got["quality"]["images"] == 61
    assert {"refused", "refusal_rate", "by_check", "refusals"} <= set(got["quality"])
    assert {"attempts", "failure_to_enrol_rate", "identities_enrolled"} <= set(got["enrolment"])
    v = got["verification"]
    assert v["genuine"] == 140 and v["impostor"] == 380
    assert v["auc"] > 0.9
    w = got["watchlist"]
    assert {"sweep", "targets", "recommended", "impostor_comparisons"} <= set(w)
    assert [p["target_fmr"] for p in w["targets"]] == [0.001, 0.01, 0.05]
    assert w["targets"][0]["observable"] is False  # 1e-3 of ~61 unknown probes: not one
    assert w["unknown_identities"] == 13
    rec = w["recommended"]
    assert 0.0 < rec["threshold"] < 1.0 and rec["tmr"] > 0.8
    (small,) = w["degraded"]
    assert small["face_px"] == 48.0 and small["threshold"] == rec["threshold"]
    assert small["unknown_probes"] == w["unknown_probes"] and 0.0 <= small["tmr"] <= 1.0
    assert "probes shrunk and JPEG-compressed (quality 60)" in res.output
    assert sorted(p.name for p in report.iterdir()) == [
        "results.json", "summary.txt", "verification_roc.png", "watchlist_rates.png",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["--data", "/nonexistent/identities"], "raksha: error: --data /nonexistent"),
        (["--data", ".", "--target-fmr", "2"], "raksha: error: --target-fmr must be"),
    ],
)
def test_eval_watchlist_refusals_are_one_line(args: list[str], start: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "raksha", "eval", "watchlist", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(start), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# --- probes made to look like a camera's -----------------------------------------------------


def test_degrade_shrinks_to_the_face_width_and_never_enlarges() -> None:
    from raksha.ml.evaluation.watchlist_degraded import degrade

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    small = degrade(image, face_width=200.0, face_px=50.0)
    assert small.shape == (75, 100, 3) and small.dtype == np.uint8
    same = degrade(image, face_width=40.0, face_px=50.0)  # a 40 px face is not enlarged
    assert same.shape == image.shape
    assert not np.array_equal(same, image)  # but still JPEG-compressed
    with pytest.raises(ValueError, match="positive"):
        degrade(image, face_width=0.0, face_px=50.0)


def test_degraded_searches_use_the_clean_gallery_by_hand() -> None:
    from raksha.ml.evaluation.watchlist_degraded import search_degraded

    clean = [
        _rec("a1", "ann", [1, 0, 0]),  # ann's template
        _rec("a2", "ann", [1, 0.2, 0]),  # known probe
        _rec("b1", "ben", [0, 1, 0]),  # ben's template
        _rec("b2", "ben", [0, 1, 0.2]),  # known probe, lost when degraded
    ]
    templates, _ = enrol(clean, per_identity=1)

    def unit(v: list[float]) -> Any:
        a = np.asarray(v, np.float32)
        return a / np.linalg.norm(a)

    # The degraded probes: a2 drifted towards ben; b2's face was not found.
    probes = [unit([1, 0.1, 0]), unit([0.6, 0.8, 0]), unit([0, 1, 0.1]), None]
    s = search_degraded(clean, probes, templates)
    assert s.known_identity == ("ann", "ben")
    # a2 (0.6, 0.8) is nearer ben (0.8) than ann (0.6): a misidentification.
    assert list(s.known_correct) == [False, False]
    assert s.known_score[0] == pytest.approx(0.8, abs=1e-6)
    assert s.known_score[1] == -math.inf
    # Unknown: ann's two degraded photos against {ben}, ben's one with a face against {ann}.
    assert s.unknown_identity == ("ann", "ann", "ben")
    assert list(s.unknown_score) == pytest.approx([float(unit([1, 0.1, 0])[1]), 0.8, 0.0], abs=1e-6)
    rates = s.rates(0.5)
    assert rates["tmr"] == 0.0 and rates["misidentification"] == 0.5
    assert rates["fmr"] == pytest.approx(1 / 3)
