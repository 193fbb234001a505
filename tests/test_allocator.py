"""Workers keep freed memory (kanbench.allocator): the setting, the user's choices, and the
page faults it removes -- counted by the kernel, not timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kanbench import allocator
from kanbench.records import RowResult
from kanbench.render import FAULTY_STEPS, _errors_block

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, None),
        ({"KANBENCH_MALLOC": "system"}, "system default (KANBENCH_MALLOC=system)"),
        ({"KANBENCH_MALLOC": " System "}, "system default (KANBENCH_MALLOC=system)"),
        ({"KANBENCH_MALLOC": "keep"}, None),
        ({"MALLOC_MMAP_THRESHOLD_": "131072"}, "as set in the environment (MALLOC_MMAP_THRESHOLD_=131072)"),
        (
            {"MALLOC_MMAP_THRESHOLD_": "1", "MALLOC_TRIM_THRESHOLD_": "2"},
            "as set in the environment (MALLOC_MMAP_THRESHOLD_=1, MALLOC_TRIM_THRESHOLD_=2)",
        ),
        (
            {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"},
            "as set in the environment (GLIBC_TUNABLES=glibc.malloc.trim_threshold=1)",
        ),
        ({"GLIBC_TUNABLES": "glibc.rtld.nns=2"}, None),  # not a malloc tunable
        ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "preloaded libjemalloc.so.2"),
        ({"LD_PRELOAD": "/a/libfoo.so:/b/libtcmalloc_minimal.so.4"}, "preloaded libtcmalloc_minimal.so.4"),
        ({"LD_PRELOAD": "/a/libfoo.so"}, None),
    ],
)
def test_the_users_own_allocator_choice_is_kept(env, expected):
    assert allocator.user_choice(env) == expected


def _faults_per_iteration(env_extra: dict, keep: bool) -> dict:
    """In a fresh process: allocate, touch and free a 40 MB block 40 times; the median page
    faults of one such round (the first rounds fault while the heap grows to its final layout)."""
    code = f"""
import json, statistics, torch
from kanbench import allocator
setting = allocator.keep_freed_memory() if {keep!r} else allocator.setting()
faults = []
for _ in range(40):
    before = allocator.minor_faults()
    torch.empty(10_000_000).fill_(1.0)  # 40 MB, freed at once
    faults.append(allocator.minor_faults() - before)
print(json.dumps({{"setting": setting, "faults": statistics.median(faults)}}))
"""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "KANBENCH_MALLOC", "GLIBC_TUNABLES"))}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and getrusage's fault count: Linux")
def test_kept_memory_is_reused_without_page_faults():
    kept = _faults_per_iteration({}, keep=True)
    assert kept["setting"].startswith("glibc, freed memory kept (mmap threshold 2 GiB")
    # 40 MB is 9,766 pages of 4 KiB: reused, the block faults in (almost) none of them
    assert kept["faults"] < 100, kept
    system = _faults_per_iteration({"KANBENCH_MALLOC": "system"}, keep=True)
    assert system["setting"] == "system default (KANBENCH_MALLOC=system)"
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp.exists() and "[always]" not in thp.read_text():
        # glibc's defaults hand a 40 MB block (above its 32 MiB mmap ceiling) back every time
        assert system["faults"] > 5000, system


def test_the_setting_of_a_process_that_changed_nothing_is_the_default():
    code = "from kanbench import allocator; print(allocator.setting())"
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "KANBENCH_MALLOC", "LD_PRELOAD"))}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "system default"


def test_rows_that_page_fault_get_a_note_under_the_table():
    quiet = RowResult(impl="mlp", device="cpu", minor_faults_per_step=FAULTY_STEPS)
    busy = RowResult(impl="splines-better_kan", device="cpu", minor_faults_per_step=9577.4, allocator="system default")
    assert _errors_block([quiet]) == []
    assert _errors_block([quiet, busy]) == [
        "- note: splines-better_kan-cpu 9,577 page faults per step: its times include the kernel "
        "mapping in fresh memory every step (allocator: system default)"
    ]


def test_user_choice_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("KANBENCH_MALLOC", "system")
    assert allocator.user_choice() == "system default (KANBENCH_MALLOC=system)"
