# The two commands of the README: `make run` (the kiosk in simulation) and `make test`.
# Each builds the virtual environment in .venv on first use; nothing is installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# On a Pi use `sudo ./install.sh` instead: it builds the service's venv on apt's camera stack.
VENV_FLAGS ?=
# Headless where there is no display (CI, ssh): same code, SDL's dummy video driver.
HEADLESS = $(if $(DISPLAY)$(WAYLAND_DISPLAY),,SDL_VIDEODRIVER=dummy)

.PHONY: venv run test bench clean voice

venv: $(STAMP)

# setuptools < 81: face_recognition_models still imports pkg_resources.
# dlib comes from the dlib-bin wheel; face_recognition then goes in with --no-deps
# so that pip never tries to build dlib from source.
# --clear: a requirement that changed (pygame -> pygame-ce) never leaves the old package's files behind.
$(STAMP): requirements.txt requirements-sim.txt requirements-office.txt requirements-dev.txt setup.py
	$(PYTHON) -m venv --clear $(VENV_FLAGS) $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip "setuptools<81" wheel
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-sim.txt -r requirements-office.txt -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps face_recognition==1.3.0
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

run: venv
	$(HEADLESS) $(BIN)/kiosk run --simulate $(ARGS)

test: venv
	$(BIN)/python -m pytest -q $(ARGS)

# The voice clips (assets/voice, committed): recorded from kiosk/voice.py's texts with espeak-ng, made Ogg by sox.
voice: venv
	@if ! { command -v espeak-ng && command -v sox; } >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends espeak-ng sox; fi
	$(BIN)/python -m kiosk.voice_build

bench: venv
	$(BIN)/python benchmarks/match.py
	$(BIN)/python benchmarks/ticket.py
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/idle.py
	$(BIN)/python benchmarks/recognition.py --faces ../shared/data/faces/dev
	$(BIN)/python benchmarks/encoders.py --faces ../shared/data/faces/dev
	$(BIN)/python benchmarks/cardread.py --faces ../shared/data/faces/dev

clean:
	rm -rf $(VENV) build *.egg-info
