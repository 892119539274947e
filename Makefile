# Two commands a new user needs (see README): `make demo` and `make test`.
# Each first installs what it needs: Debian packages, then torch (CPU build, pinned) before
# anything else so no CUDA packages come along, then the project itself.
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CLIP   ?= runs/sample.mp4
ARGS   ?=

.PHONY: demo test system venv

system:
	@command -v espeak-ng >/dev/null && ldconfig -p | grep -q libportaudio.so.2 && command -v Xvfb >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng libportaudio2 xvfb x11-apps >/dev/null)

# Smart Turn v3.2 (pipecat's trained end-of-turn model) ships inside the pipecat-ai wheel: only its
# ONNX file is used, so that wheel is installed without pipecat's own dependencies.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[test]'
	$(PIP) install -q --no-deps pipecat-ai==1.14.0
	touch $@

venv: system $(VENV)/.installed

demo: venv
	@[ -f "$(CLIP)" ] || $(PY) demo.py sample $(CLIP)
	$(PY) demo.py replay $(CLIP) $(ARGS)

test: venv
	$(PY) -m pytest -q
