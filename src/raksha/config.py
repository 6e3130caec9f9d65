"""One typed, frozen AppConfig, loaded from YAML with errors that name the field and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from raksha.detect.config import DetectorConfig
from raksha.distress.config import DistressConfig
from raksha.errors import ConfigError
from raksha.expression.config import ExpressionConfig
from raksha.site.config import SiteConfig
from raksha.site.load import load_site
from raksha.sources.config import SourceConfig
from raksha.track.config import TrackerConfig


class ExecutionConfig(BaseModel):
    """Where the face detector and the expression model run (`raksha.ort_session`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: onnxruntime's execution provider: `cpu`, or `cuda` (onnxruntime-gpu with CUDA; refused
    #: with a one-line error where onnxruntime has no CUDA provider). The GPU path is not
    #: measured in this repository.
    provider: Literal["cpu", "cuda"] = "cpu"


class AnalysisConfig(BaseModel):
    """Everything `raksha analyze` needs: the first half of the pipeline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Where model weights live; overrides RAKSHA_MODELS and ~/.cache/raksha/models.
    models_dir: Path | None = None
    source: SourceConfig = Field(default_factory=SourceConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    expression: ExpressionConfig = Field(default_factory=ExpressionConfig)
    distress: DistressConfig = Field(default_factory=DistressConfig)
    #: Where the detector and the expression model run.
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)


class IncidentPolicy(BaseModel):
    """How distress events become incidents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A new event of the same person at the same camera within this many seconds of the
    #: last one merges into that incident instead of opening (and alerting) a new one.
    merge_window_s: float = Field(120.0, ge=0)
    #: Events whose faces are this close (centre distance in face widths) at the same camera
    #: within the merge window count as the same person even if the tracker lost them.
    merge_distance_faces: float = Field(1.5, ge=0)
    #: Where incidents wait, on disk, while the database is unreachable (replayed in order
    #: when it is back and on the next start). None: `raksha-incident-spool.db` beside
    #: `evidence.dir` (created on the first outage only).
    spool: Path | None = None
    #: Incidents the spool holds at most; past that they wait in memory and a CRITICAL line
    #: is logged for each.
    spool_max: int = Field(10_000, ge=1)


class ShadowConfig(BaseModel):
    """A second expression model and/or other distress thresholds run beside the live ones on
    the same faces: their would-be events are stored (`shadow_events`), never alerted and
    never incidents (docs/field-precision.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The shadow's expression model (registry name or .onnx path); None: the live model's
    #: readings, scored with the shadow's thresholds.
    model: str | None = None
    #: Distress settings that differ from the live `distress:` (the rest are the live ones).
    distress: dict[str, Any] = Field(default_factory=dict)

    def scorer_config(self, live: DistressConfig) -> DistressConfig:
        """The shadow's distress settings: the live ones with `distress:` over them."""
        return DistressConfig.model_validate({**live.model_dump(), **self.distress})


class RunConfig(AnalysisConfig, SiteConfig):
    """`raksha run`: the analysis settings plus the city (stations, cameras, storage, alerts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incidents: IncidentPolicy = Field(default_factory=IncidentPolicy)
    #: A model or thresholds tried in shadow beside the live ones (absent: off).
    shadow: ShadowConfig | None = None

    @model_validator(mode="after")
    def _check_shadow(self) -> RunConfig:
        if self.shadow is not None:
            try:
                self.shadow.scorer_config(self.distress)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'distress'}: "
                    f"{str(e['msg']).removeprefix('Value error, ')}"
                    for e in exc.errors()
                )
                raise ValueError(f"shadow.distress: {problems}") from None
            if self.shadow.model in (None, self.expression.model) and not self.shadow.distress:
                raise ValueError(
                    "shadow: same model and thresholds as the live ones; "
                    "set shadow.model or shadow.distress"
                )
        return self

    def analysis(self) -> AnalysisConfig:
        return AnalysisConfig.model_validate(
            {name: getattr(self, name) for name in AnalysisConfig.model_fields}
        )


AppConfig = RunConfig


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at `loc`, or of its deepest existing parent."""
    line: int | None = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(key, int)
            and 0 <= key < len(node.value)
        ):
            nxt = node.value[key]
        node = nxt
    else:
        if node is not None:
            line = node.start_mark.line + 1
    return line


def format_validation_error(err: ValidationError, source: str, root: yaml.Node | None) -> str:
    parts = []
    for e in err.errors():
        loc = tuple(e["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc) if root is not None else None
        where = f"{source}:{line}" if line else source
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {field}: {msg}")
    return "invalid config: " + "; ".join(parts)


#: Deeper than this is not a settings file (the deepest real setting is about 8 levels).
MAX_DEPTH = 64


def _check_tree(root: yaml.Node | None, source: str) -> None:
    """Refuse a duplicate key (YAML keeps the last one silently) and absurd nesting, naming
    the line."""
    stack: list[tuple[yaml.Node, int]] = [] if root is None else [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            line = node.start_mark.line + 1
            raise ConfigError(
                f"invalid config: {source}:{line}: nested more than {MAX_DEPTH} levels deep"
            )
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise ConfigError(
                            f"invalid config: {source}:{line}: duplicate key {key.value!r} "
                            f"(first at line {seen[key.value]})"
                        )
                    seen[key.value] = line
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def parse_yaml(text: str, source: str) -> tuple[dict[str, Any], yaml.Node | None]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_tree(root, source)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"invalid config: {where}: {problem}") from None
    except RecursionError:
        raise ConfigError(
            f"invalid config: {source}: nested too deeply to be a settings file"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config: {source}: the top level must be a mapping of settings")
    return data, root


T = TypeVar("T", bound=BaseModel)


def load_config(path: Path | None, model: type[T]) -> T:
    """Load and validate `path` (or the defaults when None) as `model`."""
    if path is None:
        return model()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    data, root = parse_yaml(text, str(path))
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path), root)) from None


def load_analysis_config(path: Path | None) -> AnalysisConfig:
    """The analysis settings of `path`: an analysis-only YAML, or a whole deployment file
    (its stations, cameras and the rest are checked, then set aside): Raksha reads one file."""
    if path is None:
        return AnalysisConfig()
    return load_config(path, RunConfig).analysis()


def load_site_config(path: Path) -> SiteConfig:
    """Load, validate and resolve a city config YAML (errors name the field and line)."""
    return load_site(load_config(path, SiteConfig), path.parent)


def load_run_config(path: Path) -> RunConfig:
    """Load a full deployment config; jurisdiction files are read relative to it."""
    return load_site(load_config(path, RunConfig), path.parent)
