"""The machine a benchmark ran on, in one line for its results (BENCHMARKS.md records it)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """e.g. "x86_64 AMD EPYC 9R14, 2 cores, Python 3.11.9"."""
    info = Path("/proc/cpuinfo")
    cpu = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if info.exists() else platform.processor()
    return f"{platform.machine()} {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
