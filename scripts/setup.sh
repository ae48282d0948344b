#!/usr/bin/env bash
# Installs everything livegen needs on a Debian/Ubuntu machine, then leaves a ready .venv.
# Safe to run again: it only installs what is missing. A machine with only git and python3
# lacks python3-venv (ensurepip), perhaps ca-certificates (pip over https), and a C++ compiler
# (g++: visqol-python's libsvm-official has no wheel and builds from source): all are listed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="python3-venv ca-certificates g++ libportaudio2 libsndfile1 jackd2 fluidsynth fluid-soundfont-gm timgm6mb-soundfont hydrogen-drumkits liblo-tools espeak-ng sox tmux"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # jackd2 asks about real-time priority; answer for it.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
# A .venv left without pip (venv run before python3-venv was there) is made again.
if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/pip ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv --clear .venv
fi
PIP=".venv/bin/pip"
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "setup: installing torch (CUDA build)"
    $PIP install -q "torch>=2.4,<3"
  else
    echo "setup: installing torch (CPU build)"
    $PIP install -q "${LIVEGEN_TORCH:-torch==2.13.0}"
  fi
fi
stamp=".venv/.livegen-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing livegen and its Python dependencies"
  $PIP install -q -e ".[dev]"
  # CREPE pitch tracking for the benchmarks and their tests; --no-deps: its torchaudio requirement
  # would replace torch (livegen.data.pitch.import_torchcrepe stands in for torchaudio).
  $PIP install -q --no-deps "torchcrepe==0.0.24" "resampy>=0.4,<0.5" "tqdm>=4"
  touch "$stamp"
fi
