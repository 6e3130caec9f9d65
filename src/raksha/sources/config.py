"""Settings for reading video sources."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Frames analysed per second of video; frames in between are decoded but never converted.
    fps: float = Field(5.0, gt=0, le=120)
    #: Seconds to wait when opening a network stream before giving up.
    open_timeout_s: float = Field(10.0, gt=0)
    #: Seconds without a packet from a network stream before it counts as stalled.
    read_timeout_s: float = Field(5.0, gt=0)
    #: Reconnect backoff for live streams: first wait, growth factor, longest wait.
    reconnect_initial_s: float = Field(1.0, gt=0)
    reconnect_factor: float = Field(2.0, ge=1)
    #: The cap is low because each attempt is cheap (a TCP probe first): a camera whose
    #: stream returns is analysed again within about this many seconds.
    reconnect_max_s: float = Field(4.0, gt=0)
    #: Each reconnect wait is shortened by a random fraction of up to this (0: exact waits),
    #: so cameras that lost their streams together do not all knock again at once.
    reconnect_jitter: float = Field(0.1, ge=0, lt=1)
    #: For live streams: reconnect forever (None) or give up after this many failed reconnect
    #: attempts in a row (0: give up at the first failure).
    reconnect_attempts: int | None = Field(None, ge=0)
    #: Decoder threads per stream; 0 lets FFmpeg choose (one per core).
    decode_threads: int = Field(0, ge=0, le=64)
    #: Decode only the frames other frames refer to (FFmpeg skip_frame=NONREF), skipping
    #: B-frames outright: 15-40 % less decoding on H.264 with B-frames. An analysed frame
    #: is then the first decoded one at or after its due time (up to about two frame
    #: periods later), and `Frame.index` counts decoded frames only. Worth it when the
    #: analysis rate is well below the stream's rate, as with many cameras.
    skip_nonref_frames: bool = False
    #: Decode I and P frames only (FFmpeg skip_frame=BIDIR): on H.264 with B-frames, half
    #: the decoding again of `skip_nonref_frames` (a 1080p street clip: 216 -> 89 ms of CPU
    #: per second of video). Analysed frames then come from I and P frames only; if those
    #: come further apart than the analysis interval (1/fps), the source goes back to
    #: decoding B-frames (`skip_nonref_frames` still applies) for the rest of the stream.
    skip_b_frames: bool = False
    #: Decode on the GPU (NVDEC through FFmpeg's CUDA hwaccel): `off` (the CPU), `cuda`
    #: (the GPU or a clear error naming why not), `auto` (the GPU where FFmpeg can open a
    #: CUDA device, otherwise the CPU, said once in the log). Frames come back to system
    #: memory for the analysis either way. Not yet measured on a GPU (docs/benchmarks.md).
    hw_decode: Literal["off", "cuda", "auto"] = "off"

    @field_validator("hw_decode", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        """YAML reads a bare `off` as false: that is "off" here, not an error."""
        return "off" if value is False else value

    #: `raksha run` only: play video files at their native frame rate, as a live camera
    #: would deliver them (for demos and benchmarks); False reads them as fast as possible.
    realtime_files: bool = False
    #: `raksha run` only: live streams (and real-time files) are read by a thread of their
    #: own into a buffer of this many frames; when analysis falls behind, the oldest
    #: buffered frame is dropped and counted, so latency stays bounded.
    buffer_frames: int = Field(2, ge=1, le=64)
    #: Video files analysed as fast as they decode (`raksha analyze`; `raksha run` without
    #: `realtime_files`) are decoded up to this many frames ahead by a thread of their own,
    #: so that decoding overlaps the analysis of the frame before; nothing is dropped. 0
    #: decodes in the analysing thread.
    read_ahead_frames: int = Field(4, ge=0, le=64)
    #: On Linux, that read-ahead thread runs this much nicer (lower priority) than the
    #: analysis: with frames in hand it can wait, so when the cores are short the analysis
    #: goes first (the one-face clip analysed on every frame on 2 cores, three A/B pairs:
    #: 7-14 % more frames per second). 0 leaves its priority alone. Live streams are never
    #: lowered.
    read_ahead_nice: int = Field(10, ge=0, le=19)
