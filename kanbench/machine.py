"""The machine fingerprint stored in every results file.

CPU model, physical/logical cores and RAM come from psutil and /proc/cpuinfo;
GPUs (name, memory, driver, count) from NVML through ``pynvml`` (the module of
the maintained ``nvidia-ml-py`` package); a field that cannot be read is left
out rather than guessed. Software: Python, torch, its CUDA, the OS, the torch
thread count, kanbench's version and the git commit of the source tree.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import socket
import subprocess
from pathlib import Path
from typing import Optional

import kanbench


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            ).stdout.strip() or platform.processor()
        except Exception:
            pass
    return platform.processor() or platform.machine()


def cpu_info() -> dict:
    info: dict = {"model": cpu_model(), "arch": platform.machine()}
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["logical_cores"] = psutil.cpu_count(logical=True)
        info["ram_bytes"] = int(psutil.virtual_memory().total)
        try:
            freq = psutil.cpu_freq()
            if freq and freq.max:
                info["max_mhz"] = round(freq.max)
        except Exception:
            pass
    except ImportError:
        info["logical_cores"] = os.cpu_count()
    try:
        info["affinity_cores"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    return {k: v for k, v in info.items() if v is not None}


def _decode(value):
    return value.decode() if isinstance(value, bytes) else value


def gpu_info() -> list[dict]:
    """One dict per GPU from NVML; [] when NVML or a GPU is absent."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:
        return []
    gpus = []
    try:
        driver = _decode(pynvml.nvmlSystemGetDriverVersion())
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            gpu = {"index": i, "name": _decode(pynvml.nvmlDeviceGetName(handle)), "driver": driver}
            try:
                gpu["memory_bytes"] = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
            except Exception:
                pass
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                gpu["compute_capability"] = f"{major}.{minor}"
            except Exception:
                pass
            gpus.append(gpu)
    except Exception:
        pass
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return gpus


def source_root() -> Path:
    return Path(kanbench.__file__).resolve().parent.parent


def git_info(root: Optional[Path] = None) -> dict:
    root = root or source_root()
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {}
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def torch_info() -> dict:
    import torch

    info = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": bool(torch.cuda.is_available()),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
    }
    if info["cuda_available"]:
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        try:
            info["cudnn"] = torch.backends.cudnn.version()
        except Exception:
            pass
    return info


def fingerprint(threads: Optional[int] = None) -> dict:
    """Everything about the machine and software a result depends on."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    fp = {
        "hostname": socket.gethostname(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "torch": torch_info(),
        "kanbench": {"version": kanbench.__version__, **git_info()},
    }
    gpus = gpu_info()
    if gpus:
        fp["gpus"] = gpus
        fp["gpu_count"] = len(gpus)
    return fp


def _short_cpu(model: str) -> str:
    model = re.sub(r"\((R|TM|tm|r)\)", "", model)
    model = re.sub(r"\b(CPU|Processor|\d+-Core)\b", "", model)
    model = re.sub(r"@.*$", "", model)
    return re.sub(r"\s+", " ", model).strip()


def machine_label(fp: dict, device: str = "cpu", threads: Optional[int] = None) -> str:
    """A short label: the GPU model for CUDA rows, else the CPU model, plus the thread count."""
    if device.startswith("cuda"):
        gpus = fp.get("gpus") or []
        names = fp.get("torch", {}).get("cuda_devices") or [g.get("name") for g in gpus]
        if names:
            return str(names[0]).replace("NVIDIA ", "")
    cpu = _short_cpu(fp.get("cpu", {}).get("model", "cpu")) or "cpu"
    t = threads if threads is not None else fp.get("torch", {}).get("threads")
    return f"{cpu} ({t}t)" if t else cpu
