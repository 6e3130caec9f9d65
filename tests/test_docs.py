"""The documentation states the defaults the code really uses."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from raksha.config import AnalysisConfig

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_configuration_doc_shows_the_real_defaults() -> None:
    text = (DOCS / "configuration.md").read_text()
    section = text.split("### Defaults", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    documented = yaml.safe_load(block.group(1))
    actual = AnalysisConfig().model_dump(mode="json")
    actual.pop("models_dir")
    assert documented == actual, "regenerate the block with `raksha config show --analysis`"
