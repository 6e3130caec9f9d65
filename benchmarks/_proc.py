"""CPU time and memory of a process tree, read from /proc (Linux), for benchmarks.

    before = tree_cpu_s()
    ...                                  # the work being measured
    share = cpu_share(before, tree_cpu_s(), wall_s)   # 0-1 of the whole machine

CPU time is user + system time of the process and all its descendants that are alive when
read (all threads included); RSS is their resident memory summed.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:  # the process ended while we looked
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) ... utime(11) stime(12).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_s(root: int | None = None) -> float:
    """CPU seconds used so far by `root` (default: this process) and its descendants."""
    pid = os.getpid() if root is None else root
    return sum(process_cpu_s(p) for p in descendants(pid))


def process_rss_mb(pid: int) -> float:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def tree_rss_mb(root: int | None = None) -> float:
    """Resident memory (MiB) of `root` (default: this process) and its descendants."""
    pid = os.getpid() if root is None else root
    return sum(process_rss_mb(p) for p in descendants(pid))


def machine_cores() -> int:
    """CPU cores this process may run on (the machine's share it can use)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_share(cpu_before_s: float, cpu_after_s: float, wall_s: float) -> float:
    """CPU used over `wall_s` seconds as a share (0-1) of all the machine's cores."""
    if wall_s <= 0:
        return 0.0
    return (cpu_after_s - cpu_before_s) / (wall_s * machine_cores())


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    first = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) / _TICKS for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total
