# Two commands do all the set-up on a fresh machine:
#   make run    create .venv if missing, install torch's CPU wheel, then the project, open napari
#   make test   the same plus the test extra and the apt packages napari needs headless; run pytest
# For an NVIDIA GPU: make run TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
# Qt binding: PyQt5 by default; make test QT=pyqt6 runs the same suite under PyQt6 (in .venv-pyqt6).
# Every install takes the versions in constraints.txt, the set the suite last passed with
# (README: "Moving the pinned versions forward").

QT ?= pyqt5
VENV ?= $(if $(filter pyqt5,$(QT)),.venv,.venv-$(QT))
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
CONSTRAINTS := -c constraints.txt
APT_PACKAGES := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libxcb-cursor0 libxkbcommon-x11-0 \
	libgl1 libegl1 libfontconfig1 libdbus-1-3 libglib2.0-0
BENCH_FLAGS ?=  # make benchmark BENCH_FLAGS=--quick: every benchmark at its smallest settings
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test apt venv benchmark constraints clean

$(VENV)/.installed: pyproject.toml constraints.txt
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)  # first, so the project does not pull a multi-GB CUDA build
	$(PY) -m pip install -q $(CONSTRAINTS) -e ".[testing]" "napari[$(QT)]"
	touch $@

venv: $(VENV)/.installed

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: apt $(VENV)/.installed
	@if [ -n "$$DISPLAY" ]; then $(PY) -m napari_attnseg; \
	else echo "no DISPLAY: opening napari on a virtual screen, screenshot in runs/napari.png"; \
		xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m napari_attnseg --screenshot runs/napari.png; fi

test: apt $(VENV)/.installed
	$(PY) -m pytest -q

benchmark: apt $(VENV)/.installed  # tables on stdout; JSON in runs/benchmarks/, summed up in summary.md
	mkdir -p runs/benchmarks
	$(PY) -m pip install -q monai zarr  # for the comparison and the large-image run only
	$(PY) benchmarks/bench_accuracy.py $(BENCH_FLAGS) --model default --json runs/benchmarks/accuracy.json
	$(PY) benchmarks/bench_hitl.py $(BENCH_FLAGS) --json runs/benchmarks/hitl.json
	$(PY) benchmarks/bench_cpu.py $(BENCH_FLAGS) --json runs/benchmarks/cpu.json
	$(PY) benchmarks/bench_monai.py $(BENCH_FLAGS) --json runs/benchmarks/monai.json
	$(PY) benchmarks/bench_flops.py $(BENCH_FLAGS) --json runs/benchmarks/flops.json
	$(PY) benchmarks/bench_finetune.py $(BENCH_FLAGS) --json runs/benchmarks/finetune.json
	$(PY) benchmarks/bench_large.py $(BENCH_FLAGS) --json runs/benchmarks/large.json
	$(PY) benchmarks/bench_load.py $(BENCH_FLAGS) --json runs/benchmarks/load.json
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) benchmarks/bench_ui_latency.py $(BENCH_FLAGS) \
		--json runs/benchmarks/ui_latency.json
	$(PY) benchmarks/summary.py runs/benchmarks/ | tee runs/benchmarks/summary.md

constraints: $(VENV)/.installed  # after a green `make test`: pin what it ran with (both Qt bindings if present)
	{ $(PY) -m pip freeze --exclude-editable; [ ! -x .venv-pyqt6/bin/python ] || .venv-pyqt6/bin/python -m pip \
		freeze --exclude-editable; } | grep -v -i -E '^(torch|napari-attnseg)==' | sort -u -f > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache runs
