"""One line describing the machine a result came from (results files carry it)."""

from __future__ import annotations

import contextlib
import os
import platform

import numpy as np


def machine_description() -> str:
    """OS, CPU model, core count, memory and the versions that decide speed."""
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [line for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        total = next(line for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        memory = f", {int(total.split()[1]) / 2**20:.0f} GiB RAM"
    return (
        f"{platform.system()}, {cpu}, {os.cpu_count()} CPU cores{memory}, "
        f"Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}"
    )
