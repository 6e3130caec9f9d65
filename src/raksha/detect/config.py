"""Settings for face detection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Face size (px, at the detector's input) from which YuNet finds faces reliably: a rule of
#: thumb from a small check on the shared clips (docs/benchmarks.md): 4 faces of 32-48 px were
#: all found at 24-36 px and all missed at 16-24 px.
RELIABLE_FACE_PX = 24.0


class YuNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["yunet"] = "yunet"
    #: Registry name of the weights (`raksha models list`).
    model: str = "yunet-s"
    #: "onnxruntime": our own decoding of YuNet's outputs, each frame run at its own size
    #: (about twice as fast on CPU); "opencv": `cv2.FaceDetectorYN`.
    backend: Literal["onnxruntime", "opencv"] = "onnxruntime"
    #: Frames are downscaled so that their long side is at most this before detection
    #: (detect on a sub-stream sized image). Boxes are mapped back to full resolution.
    max_long_side: int = Field(640, ge=64, le=4096)
    #: Smallest face to find (side of its box, px of the source frame); 0 = off. When set,
    #: frames are shrunk further, to the size at which such a face spans `RELIABLE_FACE_PX`
    #: (24 px, the smallest YuNet finds reliably), so a close-up camera does not pay for
    #: finding faces far smaller than any it shows. Never more than `max_long_side`.
    min_face_px: float = Field(0.0, ge=0, le=4096)
    score_threshold: float = Field(0.8, gt=0, lt=1)
    nms_threshold: float = Field(0.3, gt=0, lt=1)
    top_k: int = Field(5000, ge=1)
    #: Small faces: "off"; "upscale" detects at `small_faces_long_side`; "tiles" also runs
    #: overlapping tiles of the full-resolution frame and merges the boxes with NMS.
    small_faces: Literal["off", "upscale", "tiles"] = "off"
    small_faces_long_side: int = Field(1280, ge=64, le=8192)
    tile_size: int = Field(640, ge=128, le=4096)
    tile_overlap: float = Field(0.25, ge=0, lt=0.9)
    #: onnxruntime / OpenCV threads for this stage (0 = library default: one per core).
    #: One is the default because the parallelism is elsewhere (a thread per camera, the
    #: expression stage on its own thread): on a 2-core machine, onnxruntime's default
    #: threads spin while they wait and doubled the CPU per frame while slowing the analysis
    #: down (docs/benchmarks.md). > 0 also sets OpenCV's thread count, process-wide.
    threads: int = Field(1, ge=0)
    #: Motion gating (raksha.detect.motion): skip detection on a frame when less than this
    #: share of a small grey thumbnail changed since the last detected frame, and reuse
    #: that frame's boxes (expressions are still read on the new frame). 0 = detect on
    #: every analysed frame.
    motion_gate: float = Field(0.0, ge=0, le=1)
    #: With motion gating, detect at least this often (seconds of video) anyway.
    motion_gate_max_age_s: float = Field(1.0, gt=0)
    #: Track-guided detection (raksha.pipeline.regions): the whole frame is searched at
    #: least every `rescan_s` seconds of video; on the analysed frames in between only the
    #: regions around the faces of the frame before are searched. A face that is not found
    #: again in its region makes the next frame a whole-frame search. So a face that enters
    #: the picture is found at most `rescan_s` late. 0 = search every analysed frame whole.
    rescan_s: float = Field(0.0, ge=0)
    #: A region is a square centred on where the face is expected, with this many face
    #: sides of margin on each side of it (0.5: two face sides across).
    region_margin: float = Field(0.5, ge=0.25, le=4.0)
    #: Side of the detector's input for one region, px (the region is resized to it).
    region_side: int = Field(128, ge=64, le=512)
    #: With track-guided detection: the whole frame is searched (not only the regions) when
    #: more than this share of the picture outside the regions changed since the last
    #: frame searched whole (a small grey thumbnail, as for motion gating): someone walked
    #: in, or the scene cut. 1 = never (only `rescan_s` finds new faces).
    region_change: float = Field(0.05, ge=0, le=1)


DetectorConfig = YuNetConfig
