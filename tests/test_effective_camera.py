"""effective_camera_config: one override rule for per-camera settings (unset inherits)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from raksha.config import RunConfig, load_run_config
from raksha.demo_site import demo_site_config
from raksha.site.config import CameraConfig
from raksha.site.effective import OVERRIDES, effective_camera_config

SITE_FPS = 2.0


URLS = ["/videos/a.mp4", "/videos/b.mp4", "/videos/c.mp4"]


def site() -> RunConfig:
    doc = demo_site_config(URLS)
    doc["source"] = {"fps": SITE_FPS}
    doc["detector"] = {"min_face_px": 30.0}
    return RunConfig.model_validate(doc)


def test_a_camera_without_fps_runs_at_the_sites_fps() -> None:
    cfg = site()
    cam = cfg.cameras[0].model_copy(update={"fps": None, "min_face_px": None})
    got = effective_camera_config(cfg, cam)
    assert got.source.fps == SITE_FPS
    assert got.detector.min_face_px == 30.0
    assert got.source == cfg.source and got.detector == cfg.detector


def test_a_camera_that_sets_a_field_overrides_only_that_field() -> None:
    cfg = site()
    base = cfg.cameras[0].model_copy(update={"fps": None, "min_face_px": None})
    values = {"fps": 7.5, "min_face_px": 60.0}
    assert set(values) == set(OVERRIDES)  # a new override needs a case here
    for camera_field, (section, field) in OVERRIDES.items():
        cam = base.model_copy(update={camera_field: values[camera_field]})
        got = effective_camera_config(cfg, cam)
        assert getattr(getattr(got, section), field) == values[camera_field]
        for other, (other_section, other_field) in OVERRIDES.items():
            if other != camera_field:
                site_value = getattr(getattr(cfg, other_section), other_field)
                assert getattr(getattr(got, other_section), other_field) == site_value
        # Everything else in the section is the site's.
        untouched = getattr(got, section).model_dump(exclude={field})
        assert untouched == getattr(cfg, section).model_dump(exclude={field})


def test_every_override_names_a_real_camera_field_and_stage_setting() -> None:
    cfg = site()
    for camera_field, (section, field) in OVERRIDES.items():
        assert camera_field in CameraConfig.model_fields
        assert CameraConfig.model_fields[camera_field].default is None  # unset = inherit
        assert field in type(getattr(cfg, section)).model_fields


def test_source_fps_in_yaml_is_honoured_for_cameras_that_do_not_set_one(tmp_path: Path) -> None:
    """The trap this replaces: a camera's fps defaulted to 5 and silently beat the site's."""
    doc = demo_site_config(URLS)
    doc["source"] = {"fps": 2}
    for cam in doc["cameras"]:
        cam.pop("fps", None)
    doc["cameras"][1]["fps"] = 4
    path = tmp_path / "raksha.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    cfg = load_run_config(path)
    fps = [effective_camera_config(cfg, c).source.fps for c in cfg.cameras]
    assert fps[0] == 2 and fps[1] == 4
    assert all(f == 2 for i, f in enumerate(fps) if i != 1)


@pytest.mark.parametrize("bad", [0, -1, 121])
def test_a_camera_fps_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        CameraConfig(id="c", hotspot="h", url="/x.mp4", fps=bad)
