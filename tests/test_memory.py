"""Frame-sized buffers go back to the OS when freed once the runtime fixes glibc's mmap
threshold (raksha.pipeline.memory); without it a freed 6 MB block (a 1080p BGR frame) stays
resident."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

PROBE = """
import sys
import numpy as np
from raksha.pipeline.memory import fix_mmap_threshold

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096

if sys.argv[1] == "fix":
    assert fix_mmap_threshold()
first = np.ones(6 << 20, np.uint8)  # served by mmap; freeing it raises glibc's threshold
del first
base = rss()
frame = np.ones(6 << 20, np.uint8)  # the next frame: from the heap unless the threshold is fixed
del frame
print((rss() - base) >> 20)
"""


def _left_resident_mib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, Linux only")
def test_freed_frames_leave_no_resident_memory_with_the_fixed_threshold() -> None:
    assert _left_resident_mib("default") >= 4  # glibc's own behaviour: the frame stays
    assert _left_resident_mib("fix") == 0
