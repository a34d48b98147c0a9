# TinyChat — two commands: `make run` and `make test`. Everything else is a helper of those.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Portable llama.cpp build (no AVX-512, runs on any x86-64-v3 CPU) and no unused llava library.
# One build serves tests, benchmarks and installers; pip caches the wheel, so only the first
# install compiles (~11 min on 2 cores).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages: Qt's runtime libraries (xcb for a real display), Xvfb for screenshots and journey
# tests, the accessibility bus and Debian's pyatspi through which journey tests see and press the
# window (tests/journey.py), a compiler toolchain for llama.cpp, strace (the airplane-mode test
# watches the system calls) and openssl (the download tests make a certificate for an HTTPS fake Hub).
DEB_PACKAGES := build-essential cmake libgl1 libegl1 libopengl0 libxkbcommon0 libxkbcommon-x11-0 \
	libfontconfig1 libglib2.0-0 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 \
	libxcb-shape0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0 \
	xvfb xauth fonts-dejavu-core at-spi2-core dbus-x11 python3-pyatspi gir1.2-atspi-2.0 strace \
	openssl

.PHONY: run test deps setup llama-baseline lint bench test-models clean dist dist-deps

run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(PY) -m app; \
	else \
		echo "No display found: starting TinyChat under Xvfb (invisible). Set DISPLAY to see the window."; \
		xvfb-run -a $(PY) -m app; \
	fi

# The layer contracts (pyproject.toml) first: a broken one fails with import-linter's own message.
test: setup dist-deps llama-baseline
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

setup: deps $(STAMP)

# llama.cpp for x86-64 CPUs without AVX2, which installers carry beside the main build: compiled once (minutes
# of every core) from the source llama-cpp-python vendors, into ~/.cache/tinychat, which outlives clones the
# way pip's cache does; tests and `make dist` take it from there (packaging/llama_baseline.py).
llama-baseline: setup
	@if [ "$$(uname -m)" = x86_64 ]; then $(PY) packaging/llama_baseline.py; fi

# Installs only the Debian packages that are missing; needs root or sudo only then.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev,mlx]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check app engine tests bench

# Benchmarks build the full TinyLlama-shaped models once into .cache/models (minutes each).
bench: setup
	$(PY) -m bench.engine_speed

clean:
	rm -rf $(VENV) .cache build dist *.egg-info

# Installers for this OS, smoke-tested (packaging/release.py). On Linux: dist/tinychat/ (onedir),
# dist/tinychat-VERSION-linux-x86_64.tar.gz and dist/tinychat_VERSION_amd64.deb. `make test` installs and
# runs that .deb (tests/test_packaging_deb.py), rebuilding it only when sources or packages changed.
dist: setup dist-deps
	$(PY) packaging/release.py

# What building and testing the Linux installers needs: dpkg-deb/xz and ar (binutils), Xvfb for the x11 run,
# qemu-user for the older-CPU run, desktop-file-validate and gio (libglib2.0-bin) for the menu entry, man
# (man-db, groff-base) to render the man pages.
DIST_DEB_PACKAGES := xz-utils binutils xvfb xauth qemu-user desktop-file-utils libglib2.0-bin man-db groff-base
dist-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DIST_DEB_PACKAGES)"
