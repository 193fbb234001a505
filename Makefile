# kanbench -- `make bench` and `make test` set themselves up on a fresh machine.
#
# Knobs (make VAR=value):
#   PYTHON      interpreter that creates the virtual environment (default python3)
#   VENV        where the virtual environment lives (default .venv)
#   TORCH       what pip installs for torch when the venv has none
#               (default torch==2.13.0, the CPU build; for a CUDA build e.g.
#               TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128")
#   VENV_FLAGS  extra flags for `python -m venv`; --system-site-packages keeps a
#               torch you already installed (it is then used, not replaced)
#   EXTRAS      optional extras installed with the project (default test,pykan,inkan,slurm,accuracy,entrants)
#   BENCH_IMPLS the implementations `make bench` measures (default: the seed table's)
#   BENCH_ARGS  extra arguments for `kanbench run` in `make bench`
#   PYTEST_ARGS extra arguments for pytest in `make test`

PYTHON     ?= python3
VENV       ?= .venv
TORCH      ?= torch==2.13.0
VENV_FLAGS ?=
EXTRAS     ?= test,pykan,inkan,slurm,accuracy,entrants
BENCH_ARGS ?=
PYTEST_ARGS ?=

PY    := $(VENV)/bin/python
STAMP := $(VENV)/.kanbench-installed

.PHONY: fragments accuracy docs test-docs test-install report test-browser screenshots test-slurm leaderboard bench bench-large bench-check bench-pytest sweep fit lint test test-cuda mutate setup clean help

help:
	@echo "make bench        - set up, measure the seed table's implementations (those available; CPU, and CUDA where present), print the table"
	@echo "make test         - set up, lint (ruff) and run the test suite (with coverage)"
	@echo "make mutate       - mutation testing of the number-critical modules (incremental; from scratch ~26 min on 2 cores; MODULES='a.py b.py' for some)"
	@echo "make bench-large  - the [1000,1000,1], batch-100 workload"
	@echo "make bench-check  - the CI regression gate: this tree vs GATE_BASE (default HEAD~1), interleaved A/B"
	@echo "make bench-pytest - the implementations as pytest-benchmark benchmarks"
	@echo "make leaderboard  - fetch the pinned public KANs, then every implementation param-matched (results/leaderboard.md)"
	@echo "make report       - the static HTML site of results/ (kanbench publish), in site/"
	@echo "make test-install - the wheel in a fresh venv outside the tree, with a KAN package of your own"
	@echo "make test-slurm   - --executor slurm against a local one-node Slurm (installs it; root)"
	@echo "make test-browser - the HTML site in headless Chromium (installs Debian's chromium; root)"
	@echo "make docs         - the manual (Sphinx), offline, into docs/_build/html; warnings are errors"
	@echo "make test-docs    - the built manual in headless Chromium (installs Debian's chromium; root)"
	@echo "make accuracy     - which KAN learns best: every implementation, parameter-matched, on the accuracy suite"
	@echo "make fragments    - regenerate the README's and the manual's figures from the committed results files"
	@echo "make sweep        - batch/width/grid sweeps with plots; make fit - fit quality on KAN toy tasks"
	@echo "make setup        - only create $(VENV) and install the project"

setup: $(STAMP)

# The install builds better_kan's native kernels (setup.py, a C++ extension against this venv's torch:
# hence --no-build-isolation; about 30 s on 2 cores); without a compiler it says so in one line and
# the layers use their PyTorch path. BETTER_KAN_BUILD=0 skips the build.
NATIVE_SOURCES := setup.py implementations/better_kan/build_flags.py $(wildcard implementations/better_kan/csrc/*.cpp)
$(STAMP): pyproject.toml Makefile $(NATIVE_SOURCES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	@$(PY) -c "import torch" 2>/dev/null && echo "using the installed torch $$($(PY) -c 'import torch; print(torch.__version__)')" \
		|| $(PY) -m pip install --disable-pip-version-check -q $(TORCH)
	$(PY) -m pip install --disable-pip-version-check -q "setuptools>=70.1" ninja
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation -e ".[$(EXTRAS)]"
	@$(PY) -c "from better_kan import native; print('better_kan:', native.STATUS.describe())"
	@touch $@

# the seed table's rows (those not installed are skipped with a line), all live side by side, 2 worker
# processes each (run's default is 3): under 3 minutes from a fresh clone with all nine. Every family: make leaderboard
BENCH_IMPLS ?= mlp,splines-better_kan,rbf-better_kan,effkan,fastkan,pykan,pykan-speed,inkan,inkan-eager
bench: $(STAMP)
	$(PY) -m kanbench run --device all --impl $(BENCH_IMPLS) --max-live 12 --processes 2 $(BENCH_ARGS)

bench-large: $(STAMP)
	$(PY) -m kanbench run --device all --preset large $(BENCH_ARGS)

# The regression gate: interleaved A/B of this tree against GATE_BASE (a git ref or a directory).
GATE_BASE  ?= HEAD~1
GATE_IMPLS ?= mlp,splines-better_kan,rbf-better_kan  # .ci/run calls kanbench ab with the same list
bench-check: $(STAMP)
	$(PY) -m kanbench ab --base $(GATE_BASE) --impl $(GATE_IMPLS) --preset gate $(GATE_ARGS)

bench-pytest: $(STAMP)
	$(PY) -m pytest benchmarks/test_kan_benchmarks.py --benchmark-only $(PYTEST_ARGS)

# The param-matched leaderboard of every KAN family: fetches the pinned public implementations
# first (SOURCES_FROM=DIR installs from local clones/mirrors instead of GitHub); those that
# cannot be fetched are skipped, with the reason under the table.
SOURCES_FROM ?=
LEADERBOARD_ARGS ?= --workloads users --time-broken --rounds 6 --processes 1 --max-live 24
leaderboard: $(STAMP)
	-$(PY) -m kanbench install all $(if $(SOURCES_FROM),--from $(SOURCES_FROM))
	$(PY) -m kanbench leaderboard --markdown results/leaderboard.md $(LEADERBOARD_ARGS)

sweep: $(STAMP)
	$(PY) -m kanbench sweep --impl mlp,splines-better_kan,rbf-better_kan,inkan-eager,pykan-speed \
		--batch 8,32,128,512 --width 16,64,256,1024 --grid 3,5,10,20 $(SWEEP_ARGS)

fit: $(STAMP)
	$(PY) -m kanbench fit $(FIT_ARGS)

# The README's and the manual's generated blocks (kanbench/fragments.py), from the committed results
fragments: $(STAMP)
	$(PY) -m kanbench.fragments

# The accuracy suite's default tier (every installed implementation, parameter-matched and tuned
# alike; its duration is recorded in the results file). ACCURACY_ARGS="--tier full" for everything.
# Then `make fragments` regenerates the README's and the manual's figures from the results files.
ACCURACY_ARGS ?=
accuracy: $(STAMP)
	$(PY) -m kanbench accuracy --markdown results/accuracy.md $(ACCURACY_ARGS)

# Integration tests of --executor slurm against a real one-node Slurm that
# scripts/slurm-local.sh installs (Debian's slurm-wlm + munge; needs root) and starts in
# SLURM_DIR; the daemons it started are stopped afterwards. Skips with one line where
# Slurm cannot be started.
SLURM_DIR ?= /tmp/kanbench-slurm
test-slurm: $(STAMP)
	@out=$$(bash scripts/slurm-local.sh start $(SLURM_DIR)) || { echo "test-slurm: skipped: Slurm cannot be started here (see the line above)"; exit 0; }; \
	eval "$$out"; \
	$(PY) -m pytest -q -p no:cacheprovider tests/test_slurm.py $(PYTEST_ARGS); rc=$$?; \
	bash scripts/slurm-local.sh stop $(SLURM_DIR); exit $$rc

# The HTML report of the committed reference results (open site/index.html).
SITE ?= site
report: $(STAMP)
	$(PY) -m kanbench publish results/*.json results/gpu/*.json --out $(SITE)

# The site in a real browser: Debian's chromium + chromium-driver (installed here when
# missing and root), selenium; skips with one line where no browser can be had.
test-browser: $(STAMP)
	@command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
		|| { echo "test-browser: skipped: no chromium/chromium-driver and cannot install them (needs root and apt-get)"; exit 0; }; \
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation -e ".[$(EXTRAS),browser]" && \
	$(PY) -m pytest -q -p no:cacheprovider tests/test_site.py $(PYTEST_ARGS)

# The manual: Sphinx + MyST + furo, built offline (no intersphinx, no CDN) with warnings as errors,
# so a broken cross-reference or a missing evidence file fails it. Built afresh every time (-E and
# an empty output folder): an incremental build could hide a warning or keep a stale page.
DOCS_STAMP := $(VENV)/.kanbench-docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation -e ".[$(EXTRAS),docs]"
	@touch $@
docs: $(DOCS_STAMP)
	rm -rf docs/_build/html
	$(PY) -m sphinx -E -W --keep-going -b html docs docs/_build/html

# The built manual in headless Chromium (pages, links, search; nothing fetched from the network);
# skips with one line where no browser can be had, like test-browser.
test-docs: docs
	@command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
		|| { echo "test-docs: skipped: no chromium/chromium-driver and cannot install them (needs root and apt-get)"; exit 0; }; \
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation -e ".[$(EXTRAS),browser]" && \
	$(PY) -m pytest -q -p no:cacheprovider tests/test_docs.py $(PYTEST_ARGS)

# kanbench as a user outside this repository gets it: a wheel built from the tree, installed into a
# fresh venv in a temporary folder, with a throw-away KAN package registered by an entry point
# (tests/test_install.py, about a minute; plain `make test` skips it).
test-install: $(STAMP)
	KANBENCH_INSTALL_TESTS=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_install.py $(PYTEST_ARGS)

# Refresh the README's screenshots (taken by the browser tests).
screenshots: $(STAMP)
	KANBENCH_SCREENSHOTS=docs/img $(MAKE) test-browser

test-cuda: $(STAMP)
	$(PY) -m pytest -q tests/test_cuda.py $(PYTEST_ARGS)

# lint first (seconds): ruff's checks and formatting, configured in pyproject.toml
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# coverage of the test process (modules measured only in worker processes show as uncovered)
COV_ARGS ?= --cov --cov-report=term:skip-covered
test: lint
	$(PY) -m pytest -q $(COV_ARGS) $(PYTEST_ARGS)

# Mutation testing (mutmut) of the modules that compute a number or decide a verdict; see
# [tool.mutmut] in pyproject.toml and benchmarks/results/mutation-report.md. Incremental: results
# stay in mutants/ and a run retests only the mutants of changed functions, the survivors and those
# without tests (scripts/mutate.py); MUTATE_FRESH=1 starts over. MODULES="kanbench/sanity.py ..."
# runs only those modules (each mutant runs only the selected tests that reach its function).
# One OpenMP thread: mutmut forks its test runner, and a forked OpenMP pool can deadlock.
MUTATE_TIMEOUT ?= 7200
MODULES ?=
MUTATE_FRESH ?=
mutate: $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation -e ".[$(EXTRAS),mutate]"
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 timeout -s INT -k 60 $(MUTATE_TIMEOUT) $(PY) scripts/mutate.py --max-children 2 \
		$(if $(MUTATE_FRESH),--fresh) $(MODULES) || true
	$(PY) scripts/mutation_report.py --out mutants/report.md
	@echo "report: mutants/report.md; one mutant: $(VENV)/bin/mutmut show NAME"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache mutants docs/_build
