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

from kanbench.version import __version__


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
            return (
                subprocess.run(
                    ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
                ).stdout.strip()
                or platform.processor()
            )
        except Exception:
            pass
    return platform.processor() or platform.machine()


#: CPU flags that change which kernels torch and its BLAS run (prefixes match families, e.g. avx512*)
KERNEL_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512", "amx", "avx_vnni", "sse4_2", "neon", "asimd", "sve")


def _cpuinfo_fields() -> dict:
    """The first processor's fields of /proc/cpuinfo (Linux), lower-cased keys; {} elsewhere."""
    fields: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    return fields


def _caches() -> dict:
    """Cache sizes of CPU 0 from sysfs, e.g. {"L1d": "32K", "L2": "512K", "L3": "32768K"}."""
    out = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[f"L{level}{suffix}"] = size
    return out


def cpu_identity() -> dict:
    """Vendor, family/model/stepping, kernel-relevant ISA flags, current MHz and caches: what tells
    two CPUs with the same marketing name apart (e.g. two "AMD EPYC" VMs of different generations)."""
    fields = _cpuinfo_fields()
    out: dict = {}
    for key, name in (
        ("vendor_id", "vendor"),
        ("cpu family", "family"),
        ("model", "model_number"),
        ("stepping", "stepping"),
        ("microcode", "microcode"),
    ):
        if fields.get(key):
            out[name] = fields[key]
    flags = (fields.get("flags") or fields.get("features") or "").split()
    if flags:
        out["flags"] = sorted(f for f in flags if f.startswith(KERNEL_FLAGS))
    if fields.get("cpu mhz"):
        try:
            out["mhz"] = round(float(fields["cpu mhz"]))
        except ValueError:
            pass
    caches = _caches()
    if caches:
        out["caches"] = caches
    return out


def cpu_info() -> dict:
    info: dict = {"model": cpu_model(), "arch": platform.machine(), **cpu_identity()}
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
                gpu["uuid"] = _decode(pynvml.nvmlDeviceGetUUID(handle))
            except Exception:
                pass
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
    return Path(__file__).resolve().parent.parent


def git_info(root: Optional[Path] = None) -> dict:
    root = root or source_root()
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
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
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()  # e.g. AVX2, AVX512, DEFAULT
    except Exception:
        pass
    info["backends"] = {
        "mkl": bool(torch.backends.mkl.is_available()),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "openmp": bool(torch.backends.openmp.is_available()),
    }
    build = _torch_build()
    if build:
        info["build"] = build
    if info["cuda_available"]:
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda_device_properties"] = _cuda_properties()
        try:
            info["cudnn"] = torch.backends.cudnn.version()
        except Exception:
            pass
    return info


def _torch_build() -> dict:
    """BLAS, LAPACK, oneDNN and compiler lines of ``torch.__config__.show()``."""
    try:
        import torch

        text = torch.__config__.show()
    except Exception:
        return {}
    out = {}
    for key in ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "CXX_COMPILER"):
        m = re.search(rf"{key}=([^,\n]+)", text)
        if m:
            out[key.lower()] = m.group(1).strip()
    m = re.search(r"oneDNN.*?v([\d.]+)", text) or re.search(r"MKL-DNN.*?v([\d.]+)", text)
    if m:
        out["onednn"] = m.group(1)
    m = re.search(r"Math Kernel Library Version ([\d.]+)", text)
    if m:
        out["mkl_version"] = m.group(1)
    return out


def _cuda_properties() -> list[dict]:
    """Each *visible* CUDA device as torch numbers it (CUDA_VISIBLE_DEVICES applies), with its UUID."""
    import torch

    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        entry = {
            "index": i,
            "name": p.name,
            "memory_bytes": int(p.total_memory),
            "capability": f"{p.major}.{p.minor}",
            "multiprocessors": p.multi_processor_count,
        }
        uuid = getattr(p, "uuid", None)
        if uuid is not None:
            text = str(uuid)
            entry["uuid"] = text if text.startswith("GPU-") else f"GPU-{text}"
        out.append(entry)
    return out


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
        "kanbench": {"version": __version__, **git_info()},
    }
    gpus = visible_gpus(gpu_info(), fp["torch"].get("cuda_device_properties") or [])
    if gpus:
        fp["gpus"] = gpus
        fp["gpu_count"] = len(gpus)
    return fp


def visible_gpus(nvml: list[dict], visible: list[dict]) -> list[dict]:
    """NVML's GPUs restricted to those torch can see, in torch's order, matched by UUID.

    NVML ignores ``CUDA_VISIBLE_DEVICES`` and numbers every GPU of the node, so NVML's
    device 0 need not be torch's ``cuda:0``. Without torch's list (no CUDA) NVML's is kept;
    a visible device NVML did not report keeps torch's figures alone."""
    if not visible:
        return nvml
    by_uuid = {g.get("uuid"): g for g in nvml if g.get("uuid")}
    out = []
    for v in visible:
        merged = dict(by_uuid.get(v.get("uuid"), {}))
        merged.update({k: v[k] for k in ("name", "memory_bytes", "uuid") if k in v})
        merged["compute_capability"] = v.get("capability", merged.get("compute_capability"))
        merged["nvml_index"] = merged.pop("index", None)
        merged["index"] = v["index"]
        out.append(merged)
    return out


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
    ident = fp.get("cpu", {})
    if ident.get("family") and ident.get("model_number"):
        cpu += f" {ident['family']}/{ident['model_number']}"  # family/model: the generation behind the name
    capability = fp.get("torch", {}).get("cpu_capability")
    if capability:
        cpu += f" {capability}"
    t = threads if threads is not None else fp.get("torch", {}).get("threads")
    return f"{cpu} ({t}t)" if t else cpu
