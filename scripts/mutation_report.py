"""Summarize a ``mutmut run`` (``make mutate``) as markdown: the score per module and every
surviving mutant with its diff, so each can be answered with a test or an explanation.

    python scripts/mutation_report.py [--out FILE.md] [--diffs] [--previous OLD.md] [--notes NOTES.md]

Reads ``mutmut results --all true`` and each survivor's diff (``mutmut show NAME``); run from the repository root
after ``mutmut run``. ``--previous``: a module of that report's table that this ``mutants/`` has no
result for (not run this time) keeps its row, marked, and its unexplained survivors are listed
again from there. ``--notes``: markdown put between the table and the survivors.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

MUTMUT = [str(Path(sys.executable).with_name("mutmut"))]


def get_diff_for_mutant(name: str) -> str:
    """The mutant's unified diff (what ``mutmut show NAME`` prints), read in this process:
    one ``mutmut show`` per survivor took 5 minutes for 400."""
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant as diff_of
    except ImportError:  # another mutmut layout: one process per mutant
        return subprocess.run(MUTMUT + ["show", name], capture_output=True, text=True).stdout
    return diff_of(name)


def statuses() -> dict[str, str]:
    out = subprocess.run(MUTMUT + ["results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


# ----------------------------------------------------------------------------- explanations
#
# A survivor is "answered" by a test that kills it or by a reason it cannot matter. The
# reasons below are rules over a survivor's diff or its function, each checked by reading
# the code; whatever no rule covers is listed as unexplained, with its diff.

_STRING = re.compile(r'[rbf]?"(?:[^"\\]|\\.)*"|[rbf]?\'(?:[^\'\\]|\\.)*\'')

CUDA_BRANCH = "CUDA-only branch: runs in tests/test_cuda.py where a GPU exists"
CUDA_ONLY = "CUDA-only: runs in tests/test_cuda.py where a GPU exists"
DEVICE_ARGS = "device arguments: the same tensors on the CPU (CUDA runs in tests/test_cuda.py)"
DEVICE_DTYPE_ARGS = "device/dtype arguments that only matter off the CPU or for non-float64 inputs"
DISPATCH = "equivalent: the dispatch between the hand-written backward and plain autograd"

#: (module, function name prefix, regex the changed lines must match, or None: any change)
#: -> why such a survivor cannot change a number kanbench reports; each read against the code.
#: Whole-function rules come first.
RULES = [
    (("kanbench.timing", "xǁCudaClock", None), CUDA_ONLY),
    (("kanbench.memory", "x_cuda_", None), CUDA_ONLY),
    (("kanbench.compare", "x_render", None), "renders a table: display only"),
    (("kanbench.compare", "xǁComparisonǁrender", None), "renders a table: display only"),
    # better_kan.basis: answered one by one in the first report, each rule's survivors only of this kind
    (
        ("implementations.better_kan.basis", "x_bspline_uniform", None),
        DISPATCH + "; every path computes the same values and gradients (tests/test_layer_gradients.py checks both)",
    ),
    (("implementations.better_kan.basis", "x_rbf_basis", None), DISPATCH),
    (
        ("implementations.better_kan.basis", "x_cardinal_terms", None),
        "equivalent: a longer loop adds terms with shift <= 0, whose (shift - |z|)_+ is 0",
    ),
    (
        ("implementations.better_kan.basis", "x_cox_de_boor_tables", None),
        "equivalent: a zero denominator (repeated knots) gives 1e30 instead of 0, multiplied by a basis "
        "that is exactly 0 on a zero-width interval",
    ),
    (("implementations.better_kan.basis", "x_extend_knots", None), DEVICE_DTYPE_ARGS),
    (("implementations.better_kan.basis", "x_uniform_grid", None), DEVICE_DTYPE_ARGS),
    (("kanbench.compare", "x__doc_name", None), "a display name of a file"),
    (("kanbench.compare", "x__key_label", None), "a display label of a row"),
    (
        ("kanbench.significance", "x_compare_", r'"(GREATER|LESS)"'),
        'equivalent: scipy lowercases `alternative`, so "GREATER" is "greater"',
    ),
    (
        ("kanbench.memory", "x_cpu_phase_peaks", r"profile\((activities=None, )?profile_memory=True\)"),
        "equivalent: torch.profiler's default activities include the CPU, and the replay reads only CPU allocations",
    ),
    (
        ("kanbench.compare", "x__auto_normalize", r"sorted\("),
        "the order of the note lines under the table (one per MLP): display only",
    ),
    (("kanbench.memory", "x_phase_peaks", r"cuda"), CUDA_BRANCH),
    (("kanbench.timing", "x_make_clock", r"cuda|CudaClock"), CUDA_BRANCH),
    (
        ("implementations.better_kan.basis", "x_uniform_affine", r"unsqueeze\(\+1\)"),
        "equivalent: h is 1-D, so unsqueeze(+1) is unsqueeze(-1)",
    ),
    (("implementations.better_kan.regularization", "x_edge_statistics", r"device"), DEVICE_ARGS),
    (("implementations.better_kan.regularization", "xǁCoefL1ǁforward", r"device"), DEVICE_ARGS),
    (
        ("implementations.better_kan.regularization", "x_std_ratio", r"keepdim=False|mean\(0, \)"),
        "equivalent: the mean over dim 0 broadcasts against (n, in, J) with or without keepdim",
    ),
    (
        ("implementations.better_kan.regularization", "xǁEdgeMeanAbsǁforward", r"out_f = weight\.shape\[1\]"),
        "equivalent: out_f only sizes the chunks, which partition the inputs; the result does not depend on the cut",
    ),
]


BK = "implementations.better_kan."
NUMPY_PROMOTES = "equivalent: the other operand is float64, and numpy promotes the difference to float64 (exactly)"

RULES += [
    # better_kan: the device of helper tensors (the CPU is the default; CUDA runs in tests/test_cuda.py)
    ((BK + "grids", "x_refine_knots", r"device"), DEVICE_ARGS),
    ((BK + "layers", "xǁKANLayerǁ_empty_like", r"device"), DEVICE_ARGS),
    (
        (BK + "network", "xǁKANǁcompiled", None),
        "torch.compile: excluded from the mutation run (it traces through mutmut's trampolines)",
    ),
    (
        (BK + "rbf_layer", "xǁRBFKANLayerǁ_load_from_state_dict", r"\*args, \)"),
        "equivalent: torch calls _load_from_state_dict with positional arguments only (no **kwargs to pass on)",
    ),
    # kanbench
    (
        ("kanbench.sweep", "x_crossings", r"\) / \(y1 - 1\) < 0|\) \* \(y1 - 1\) <= 0"),
        "equivalent: neither factor is 0 (points exactly at 1 are skipped), so the product's sign is the quotient's "
        "and it is never 0",
    ),
    (
        ("kanbench.sweep", "x_dtype_supported", r"torch\.ones\(4, dtype"),
        "equivalent: the bfloat16 probe's shape (a 1-D ones @ ones runs the same bfloat16 kernels)",
    ),
    (("kanbench.sweep", "x_dtype_supported", r"cuda|CUDA"), CUDA_BRANCH),
    (("kanbench.accuracy.metrics", "x_rmse", r"dtype=None|np\.asarray\((pred|y), \)"), NUMPY_PROMOTES),
    (("kanbench.accuracy.metrics", "x_nrmse", r'"INF"'), 'equivalent: float() reads "INF" as inf'),
    (
        ("kanbench.accuracy.train", "x_evaluate", r"\.to\(None\)"),
        "equivalent: the inverse scaling (float64 arrays) and every metric (np.asarray(..., float64)) compute in float64 anyway",
    ),
    (
        ("kanbench.accuracy.summary", "x_scaling_exponents", r"test_rmse >= 0"),
        "equivalent: a zero RMSE is already excluded by the truth test before it",
    ),
    (
        ("kanbench.accuracy.summary", "x_scaling_exponents", r"dtype=None|np\.array\(.*\), \)\)"),
        "equivalent: the parameter counts and median RMSEs are already int/float64 arrays; np.log returns float64",
    ),
    (
        ("kanbench.accuracy.summary", "x_task_rows", r"rankdata\(keys, \)"),
        "equivalent: scipy's rankdata defaults to method='average'",
    ),
    (
        ("kanbench.accuracy.summary", "x_win_rates", r'proportion_ci\(method="wilson"\)'),
        "equivalent: proportion_ci's confidence_level defaults to 0.95",
    ),
    (
        ("kanbench.accuracy.suite", "x__record", r'getattr\(spec, "family", None\) or ""'),
        'equivalent: a missing family is "" either way (None or "")',
    ),
    (
        ("kanbench.accuracy.suite", "x__record", r"spec is not None or getattr"),
        "equivalent: a spec without a FLOPs model raises in the call, which is caught and leaves flops_per_sample None",
    ),
    (
        ("kanbench.interleave", "x_measure_batch", r'prefix="(XXkanbench-interleave-XX|KANBENCH-INTERLEAVE-)"|prefix=None'),
        "the temporary directory's name",
    ),
    (
        ("kanbench.interleave", "x_measure_batch", r"interrupted = None"),
        "equivalent: None and False are both false in `if interrupted`",
    ),
    ((BK + "fused", "xǁKANLinearFunctionǁforward", r"device"), DEVICE_ARGS),
    (
        (BK + "grids", "x_", r"\.to\(None\)|dim=0\], \)|\], \)"),
        "equivalent: torch promotes float32 to float64 in minimum/maximum/cat, exactly",
    ),
    (
        (BK + "fused", "xǁSplineBasisǁ__init__", r"k >= 0|\(k > 0\) or True"),
        "equivalent: for k = 0 value() and derivative() return before reading the terms",
    ),
    (
        (BK + "fused", "xǁRBFBasisǁ__init__", r"self\.kernel = None"),
        "equivalent: a missing kernel name only makes the layer rebuild its (stateless) basis object",
    ),
    (
        (BK + "fused", "xǁSplineBasisǁvalue", r"\.to\(None\)"),
        "equivalent: the boolean indicator is converted to the features' dtype when it is written into them",
    ),
    (
        (BK + "layers", "xǁKANLayerǁ_load_from_state_dict", r"\*args, \)"),
        "equivalent: torch calls _load_from_state_dict with positional arguments only (no **kwargs to pass on)",
    ),
    (
        (BK + "spline_layer", "xǁSplineKANLayerǁ_load_from_state_dict", r"\*args, \)"),
        "equivalent: torch calls _load_from_state_dict with positional arguments only (no **kwargs to pass on)",
    ),
    (
        (BK + "spline_layer", "xǁSplineKANLayerǁ_apply", r"_apply\(fn, \*\*kwargs\)|_apply\(fn, \*args, \)|\"_cox_tables\", \)"),
        "equivalent: torch calls _apply(fn) (recurse by keyword or default), and _cox_tables exists from __init__ on",
    ),
    ((BK + "layers", "xǁKANLayerǁedge_values", r'"SPJ,QPJ->SQP"'), "equivalent: einsum accepts upper-case subscripts"),
    ((BK + "network", "xǁKANǁplot", None), "display only: the plot (tests/test_better_kan.py checks that a PNG is written)"),
    (
        ("kanbench.accuracy.tasks", "x__sph_harm_re", r"sph_harm\("),
        "the branch for scipy before 1.15 (sph_harm; removed in 1.17): this scipy has sph_harm_y",
    ),
    (
        ("kanbench.accuracy.tasks", "x__special_tasks", r"fromlist=\["),
        "equivalent: __import__ returns scipy.special whatever fromlist names (the function is read from it after)",
    ),
    (("kanbench.sanity", "x_gradient_error", r"\.to\(None\)|_cuda_devices\(m, None\)|devices=None"), CUDA_BRANCH),
    (
        ("kanbench.sanity", "x_gradient_error", r"\.max\(\)\) >= DETERMINISM_TOLERANCE"),
        "equivalent: the bound is positive, so >= and > differ only when the difference equals it exactly",
    ),
    (
        ("kanbench.sanity", "x__reseed", r"cuda|devices|for d in"),
        "the CUDA generators (none on the CPU; test_leaderboard.py's CUDA variant runs where a GPU exists)",
    ),
    (
        ("kanbench.sanity", "x__cuda_devices", None),
        "the CUDA devices of a model (none on the CPU; test_leaderboard.py's CUDA variant runs where a GPU exists)",
    ),
    (
        ("kanbench.sanity", "x__check", r"set_to_none=(None|False)"),
        "equivalent: the gate clears the gradients three times; when one call zeroes instead of dropping them, a later "
        "call drops them (and zeroed or missing, the dead-parameter check reads them alike)",
    ),
    (
        ("kanbench.sanity", "x__check", r"model\(3 \* x\)"),
        "equivalent: any factor but 1 finds an output that ignores the inputs' scale (the message says doubled)",
    ),
    (
        ("kanbench.sanity", "x__check", r"\(y - target\) \*\* 3|\(y - target\) \* 2|\(y \* 2\)|\(y\*\*3\)|\(y \*\* 3\)|y\*\*3"),
        "equivalent for the verdicts: the loss only decides which parameters get a finite, non-zero gradient; these "
        "variants have one wherever the original has (a target of -y, which the sign matters for, is tested)",
    ),
    (
        ("kanbench.sanity", "x__check", r"\(target is not None\) and False"),
        "equivalent for the verdicts: without the target the loss is mean(y^2), whose gradients vanish only where y does",
    ),
    (
        (
            BK + "spline_layer",
            "xǁSplineKANLayerǁ__init__",
            r'register_buffer\("(grid|affine_a|affine_b)", None\)|torch\.empty\(1, ',
        ),
        "equivalent: _set_grid assigns the buffer right after (a registered name stays a buffer when a tensor is assigned)",
    ),
    (
        (
            BK + "spline_layer",
            "xǁSplineKANLayerǁ__init__",
            r"torch\.empty\(0, (device=(None|device), )?dtype=(dtype|None)\)|torch\.empty\(0, device=device, \)|torch\.empty\(0, dtype",
        ),
        "equivalent: _set_grid replaces the empty placeholder with a tensor of the weight's device and dtype",
    ),
    ((BK + "spline_layer", "xǁSplineKANLayerǁ__init__", r"grid_range\[1\], None, dtype\)"), DEVICE_ARGS),
    (
        (
            BK + "rbf_layer",
            "xǁRBFKANLayerǁ__init__",
            r'register_buffer\("affine_(a|b)", (None|torch\.empty\((0|1), (device=(None|device), )?dtype=dtype\))\)',
        ),
        "equivalent: _refresh_affine assigns both buffers right after (with trainable centers they are never read)",
    ),
    (
        (BK + "rbf_layer", "xǁRBFKANLayerǁ__init__", r"device=None, dtype=torch\.float64|linspace\(lo, hi, num_centers, dtype"),
        DEVICE_ARGS,
    ),
    (
        (BK + "rbf_layer", "xǁRBFKANLayerǁnative_basis", r"self\.kernel, 1$"),
        "equivalent: the native operator reads the order only for the B-spline bases",
    ),
    (
        (BK + "spline_layer", "xǁSplineKANLayerǁnative_basis", r"new_empty\(1\)"),
        "equivalent: the operator's Cox-de Boor basis reads only the knots (its b argument is not read)",
    ),
    (
        (
            BK + "spline_layer",
            "xǁSplineKANLayerǁbasis",
            r"bspline_cox_de_boor\(x, self\.grid, (None, self\._cox_tables|self\.spline_order, (None)?)\)",
        ),
        "equivalent: bspline_cox_de_boor reads the order only to build the tables, which basis() passes built "
        "(or, without them, builds the same from the knots)",
    ),
    ((BK + "layers", "xǁKANLayerǁ__init__", r"self\._masked = None"), "equivalent: _masked is read only as a truth value"),
    (
        (BK + "grids", "x_widths_from", r"torch\.diff\(centers, \)"),
        "equivalent: centers is (in, m), so diff's default dim=-1 is dim 1",
    ),
    ((BK + "network", "x_build_kan", r"device=None, dtype=dtype|\(a, b, dtype=dtype"), DEVICE_ARGS),
    (
        (BK + "network", "x_build_spline_kan", r"build_kan\(widths, \*\*kwargs\)"),
        'equivalent: build_kan\'s default layer type is "spline" (a test checks the default)',
    ),
    (
        ("kanbench.axes", "x_crossings", r"\(pts\[last\]\[1\] - 1\) (/ \(y1 - 1\) < 0|\* \(y1 - 1\) <= 0)"),
        "equivalent: both factors are non-zero there (points at exactly 1 are skipped and `last` is only an off-1 "
        "point), so the product is never 0 and has the quotient's sign",
    ),
    (("kanbench.ab", "x__git", r"timeout="), "the time limit of a local git command (it returns in milliseconds)"),
    (
        ("kanbench.ab", "x_resolve_side", r"--verify|--quiet|--QUIET|--format=tar"),
        "equivalent: git rev-parse gives the same status and output (--quiet only silences stderr, which is not read); "
        "git archive's default format is tar",
    ),
    (("kanbench.ab", "x_resolve_side", r"prefix=|mkdtemp\(\)"), "the temporary directory's name"),
    (("kanbench.ab", "x_run", r"prefix="), "the temporary directory's name"),
    (
        ("kanbench.ab", "x_resolve_side", r"extractall\("),
        "equivalent here: a bad path raises TypeError, whose fallback extracts into the same directory; the data "
        "filter only matters for archives with unsafe members (git archive of a tree has none); the fallback itself "
        "runs only on a Python without extraction filters",
    ),
    (
        ("kanbench.ab", "xǁABPlanǁcheck_test", r"0 < alpha <= 1|0 < alpha < 2"),
        "equivalent: for alpha >= 1 the formula asks for at most 1 round, and every plan has at least 2",
    ),
    (
        ("kanbench.accuracy.data", "x_split", r"test_fraction: float = 1\.2"),
        "equivalent: only the train fraction uses test_fraction; with 1.2 the train cut is the negative index "
        "-round(0.4 n), i.e. n - round(0.4 n) = round(0.6 n) for every n (6n is even, so 0.6 n is never a rounding tie)",
    ),
    (
        ("kanbench.accuracy.tasks", "x__uniform", r"dtype=None|ranges\], \)"),
        "equivalent: integer bounds give an int64 array, and lo + rng.random(...) * (hi - lo) is the same float64",
    ),
    (("kanbench.accuracy.train", "x__tensors", r"device=None|dtype=dtype, \)|dtype=torch\.long, \)"), DEVICE_ARGS),
    (
        ("kanbench.accuracy.train", "x__tensors", r"dtype=torch\.long|as_tensor\(v, device=device\)"),
        "equivalent: the labels are int64 arrays already (torch.long)",
    ),
    (("kanbench.accuracy.train", "x_train_once", r"_tensors\(prepared, task, None"), DEVICE_ARGS),
    (
        ("kanbench.accuracy.train", "x_train_once", r'"XXadamXX"|"ADAM"'),
        "equivalent: Adam.step(closure) evaluates the closure and then steps, as the Adam branch does",
    ),
    (("kanbench.accuracy.train", "x_train_once", r"cuda|synchronize|lambda: 0"), CUDA_BRANCH),
    (
        ("kanbench.accuracy.train", "x_train_once", r'loss = ""|best_state = ""'),
        "equivalent: overwritten before it is read (the first step sets the loss; check(0) always keeps a state)",
    ),
    (
        ("kanbench.accuracy.train", "x_train_once", r"set_to_none=(None|False)"),
        "equivalent: every step's backward reaches every trainable parameter, so a zeroed and a missing gradient "
        "end as the same gradient",
    ),
    (("kanbench.install", "x_pip_install", r"delete=None"), "equivalent: NamedTemporaryFile reads delete as a truth value"),
    (
        ("kanbench.interleave", "x_", r"1000000001\.0"),
        "equivalent: 1e9 s and 1e9 + 1 s both mean no time limit",
    ),
    (
        ("kanbench.interleave", "x_measure_jobs", r"len\(jobs\) >= config\.max_live|\(len\(jobs\) > config\.max_live\) or True"),
        "equivalent: when every job fits in one batch, that batch holds every MLP row, so no companion is needed",
    ),
]

NUMPY_NONE = "equivalent: numpy reads a dtype of None as float64"
UNKNOWN_DIM = "equivalent: numpy reads any negative size in reshape as the one unknown dimension (-2 is -1)"

RULES += [
    # sanity
    (
        ("kanbench.sanity", "x__check", r"if \(batch > 1\) or True else 0\.0|if batch >= 1 else 0\.0|if batch > 1 else 1\.0"),
        "equivalent: the spread is read only when batch > 1 (the doubling check's first condition)",
    ),
    (
        ("kanbench.sanity", "x__relative_spread", r"keepdim=False|mean\(dim=0, \)"),
        "equivalent: y is (batch, out); its mean over dim 0, of shape (out,) or (1, out), broadcasts alike",
    ),
    (("kanbench.sanity", "x_check", r"devices=None|_cuda_devices\(model, None\)"), CUDA_BRANCH),
    (
        ("kanbench.sanity", "x_gradient_error", r"Generator\(device=None\)"),
        "equivalent: torch.Generator(device=None) is a CPU generator",
    ),
    # allocator
    (
        ("kanbench.allocator", "x_user_choice", r'"XXXX"'),
        'equivalent: the default of an unset variable: "XXXX" is not "system", holds no "glibc.malloc" and '
        'names no malloc library, like ""',
    ),
    # accuracy tasks and summary
    (
        ("kanbench.accuracy.tasks", "x__function_task", r"dtype=None|fn\(x\), \)"),
        "equivalent: every task function returns float64 for float64 points (numpy and scipy.special keep the dtype)",
    ),
    (("kanbench.accuracy.tasks", "x_", r"reshape\(-2, 1\)"), UNKNOWN_DIM),
    (
        ("kanbench.accuracy.tasks", "x__sklearn", r"dtype=None|bunch\.data, \)"),
        "equivalent: scikit-learn's bundled datasets load as float64 arrays",
    ),
    (
        ("kanbench.accuracy.tasks", "x__special_tasks", r"import_sp\(name\)\(None\)"),
        "equivalent: the function import_sp(name) returns ignores its argument",
    ),
    (("kanbench.accuracy.tasks", "x__tabular_tasks", r"astype\(None\)"), NUMPY_NONE),
    (
        ("kanbench.accuracy.tasks", "x__tabular_tasks", r"inner(_c)?\(None\)"),
        "equivalent: the scikit-learn loaders ignore the seed (the datasets are fixed; the split draws from it later)",
    ),
    (("kanbench.accuracy.tasks", "x__toy_tasks", r"note="), "the task's note: display text (the catalogue page)"),
    (
        ("kanbench.accuracy.summary", "x_scaling_exponents", r"sorted\(by_params\)\], \)\)"),
        "equivalent: the parameter counts and median RMSEs are already int/float64 arrays; np.log returns float64",
    ),
    (
        ("kanbench.measure", "xǁRowJobǁfrom_dict", r'bool\(d\.get\("(compile|time_broken|sanity)", (None)?\)\)'),
        "equivalent: bool(None) is bool(False)",
    ),
    # cluster
    (
        ("kanbench.cluster", "x_job_argv", r'tok\.split\("=", (2)?\)\[0\]'),
        'equivalent: the text before the first "=" is the same however often the rest is split',
    ),
    (("kanbench.cluster", "x_job_argv", r"skip = None"), "equivalent: None and False are both false in `if skip`"),
    (
        ("kanbench.cluster_jobs", "x_collect", r"if \(good\) or True else docs"),
        "equivalent: with no document holding a machine, good + the others is every document, in order",
    ),
    (
        ("kanbench.cluster_jobs", "x_collect", r'"slurm": False|ResultsDocument\(config='),
        "equivalent: collect() replaces config['slurm'] of every merged document; machine defaults to {}",
    ),
    (
        ("kanbench.cluster_jobs", "x_collect", r'getattr\(r, "impl", \)'),
        "equivalent: every record type (run, fit and accuracy rows) has an impl",
    ),
    (
        ("kanbench.cluster_jobs", "x_collect", r'else "failed"'),
        "equivalent: failed_rows reads the state word lower-cased (job-failed either way)",
    ),
    (
        ("kanbench.cluster_jobs", "x_wait", r'last = (None|"XXXX")'),
        "equivalent: the first summary line is never empty or XXXX, so it is reported whatever `last` starts as",
    ),
    # cross-hardware, sweep
    (("kanbench.cross_hardware", "x_frame", r"astype\(None\)"), NUMPY_NONE),
    (("kanbench.sweep", "x_progress_bar", r"flush="), "the progress bar's flush: display only"),
]


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    lines = diff.splitlines()
    minus = [l[1:] for l in lines if l.startswith("-") and not l.startswith("---")]
    plus = [l[1:] for l in lines if l.startswith("+") and not l.startswith("+++")]
    return minus, plus


def _strings(line: str) -> list[str]:
    return _STRING.findall(line)


def explain(name: str, diff: str) -> str:
    """Why a survivor cannot change a number kanbench reports, or "" when no rule applies."""
    minus, plus = _changed_lines(diff)
    changed_text = "\n".join(minus + plus)
    for (module, func, pattern), reason in RULES:
        tail = name[len(module) + 1 :] if name.startswith(module + ".") else ""
        if tail.startswith(func) and (pattern is None or re.search(pattern, changed_text)):
            return reason
    if minus and len(minus) == len(plus):
        same_code = all(_STRING.sub('""', a) == _STRING.sub('""', b) for a, b in zip(minus, plus))
        if same_code:
            changed = [x for a, b in zip(minus, plus) for x, y in zip(_strings(a), _strings(b)) if x != y]
            # prose (has a space or ends a sentence) is a message, note or label; an identifier-like
            # string could be a key, which is not explained by this rule
            if changed and all(" " in c or c.strip("\"'rbf").endswith((".", ":", ")")) for c in changed):
                return "text of a message, note or label (tests match its key phrase, no number depends on it)"
    return ""


def module_of(name: str) -> str:
    """``kanbench.stats.x_summarize__mutmut_3`` -> ``kanbench.stats``."""
    return name.split(".x")[0].split(".xǁ")[0] if ".x" in name else name.rsplit(".", 1)[0]


_ROW = re.compile(r"^\| (\S+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\S+) \|")
COLUMNS = ("mutants", "killed", "survived", "no tests", "timeout", "not checked")


def previous_report(path: Path) -> tuple[dict, list]:
    """(module -> its table row as a dict of counts, [(name, diff lines)] of its unexplained survivors)."""
    rows, unexplained = {}, []
    lines = path.read_text().splitlines()
    for line in lines:
        m = _ROW.match(line)
        if m and m.group(1) != "module":
            rows[m.group(1).strip("*")] = dict(zip(COLUMNS, map(int, m.groups()[1:7])))
    in_list = False
    for i, line in enumerate(lines):
        if line.startswith("### Not yet explained"):
            in_list = True
        elif in_list and line.startswith("#"):
            in_list = False
        elif in_list and line.startswith("- `"):
            diff = []
            for nxt in lines[i + 1 :]:
                if nxt.startswith("- `") or nxt.startswith("#"):
                    break
                if nxt.startswith(("+", "-")):
                    diff.append(nxt)
            unexplained.append((line[3:].split("`")[0], diff))
    return rows, unexplained


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--diffs", action="store_true", help="include every survivor's diff")
    ap.add_argument("--previous", type=Path, help="an earlier report: keep the rows of modules not run this time")
    ap.add_argument("--notes", type=Path, help="markdown inserted between the table and the survivors")
    args = ap.parse_args()
    found = statuses()
    by_module: dict = collections.defaultdict(collections.Counter)
    for name, status in found.items():
        by_module[module_of(name)][status] += 1
    carried: dict = {}  # module -> its row in the previous report (no result for it here)
    carried_unexplained: list = []
    if args.previous:
        old_rows, old_unexplained = previous_report(args.previous)
        for module, row in old_rows.items():
            c = by_module.get(module)
            if c is None or c["not checked"] == sum(c.values()):
                carried[module] = row
                by_module.pop(module, None)
        carried_unexplained = [(n, d) for n, d in old_unexplained if module_of(n) in carried]
    lines = [
        "# Mutation testing (mutmut)",
        "",
        "| module | mutants | killed | survived | no tests | timeout | not checked | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for module in sorted(set(by_module) | set(carried)):
        c = carried.get(module) or by_module[module]
        total = c["mutants"] if module in carried else sum(c.values())
        tested = c["killed"] + c["survived"] + c["timeout"]
        score = f"{100 * (c['killed'] + c['timeout']) / tested:.0f}%" if tested else "-"
        label = f"{module}*" if module in carried else module
        lines.append(
            f"| {label} | {total} | {c['killed']} | {c['survived']} | {c['no tests']} | {c['timeout']} | "
            f"{c['not checked']} | {score} |"
        )
    lines += [
        "",
        "Score = (killed + timeout) / (killed + survived + timeout); 'no tests': no selected test runs that function.",
    ]
    if carried:
        lines.append(f"\\* not run this time: the row of the previous report ({args.previous}).")
    lines.append("")
    if args.notes:
        lines += [args.notes.read_text().rstrip("\n"), ""]
    if not any(c["killed"] + c["survived"] + c["timeout"] for c in by_module.values()):
        print("mutation report: mutmut tested no mutant (did its first, unmutated test run fail? see its output)")
        return 1
    survivors = sorted(n for n, s in found.items() if s == "survived")
    explained: dict = collections.defaultdict(list)
    unexplained = []
    for name in survivors:
        diff = get_diff_for_mutant(name)
        reason = explain(name, diff)
        if reason:
            explained[reason].append(name)
        else:
            unexplained.append((name, diff))
    lines += [
        f"## Surviving mutants ({len(survivors)}): {len(survivors) - len(unexplained)} explained by a rule, "
        f"{len(unexplained)} not yet",
        "",
    ]
    for reason, names in sorted(explained.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"- **{reason}** ({len(names)}): " + ", ".join(f"`{n.split('.')[-1]}`" for n in names))
    lines += ["", f"### Not yet explained ({len(unexplained)})", ""]
    for name, diff in unexplained:
        lines.append(f"- `{name}`")
        if args.diffs:
            lines += [
                "",
                "```diff",
                *[l for l in diff.splitlines() if l.startswith(("+", "-")) and not l.startswith(("+++", "---"))],
                "```",
            ]
    if carried:
        explained_before = sum(carried[m]["survived"] for m in carried) - len(carried_unexplained)
        lines += [
            "",
            f"### Modules not run this time ({len(carried)}, marked * in the table)",
            "",
            f"Their {sum(carried[m]['survived'] for m in carried)} survivors stand as in the previous report: "
            f"{explained_before} explained there by a rule, and these {len(carried_unexplained)} not yet:",
            "",
        ]
        for name, diff in carried_unexplained:
            lines.append(f"- `{name}`")
            if args.diffs and diff:
                lines += ["", "```diff", *diff, "```"]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
