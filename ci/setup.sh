#!/usr/bin/env bash
# Sets up what llmtest's own suites and tests need on a fresh machine (Rust, Python 3.11,
# gcc present): a Python environment at .venv with the ONNX Runtime library (the onnx
# backend loads it dynamically) and the Python packages the tests compare against.
# `--with-llama-server` also builds llama.cpp's server for the HTTP backend's real-server
# tests (≈6 min on 2 cores, cached in ci/cache/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r ci/requirements.txt

# The code grader's Rust runner runs rustc as an unprivileged sandbox user, who cannot read
# rustup's toolchain in a private home directory: a system rustc serves its tests.
if [[ ! -x /usr/bin/rustc ]] && command -v apt-get >/dev/null; then
  SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends rustc >/dev/null
fi

# The HTML report's browser test loads the page in Debian's headless chromium.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if [[ "${1:-}" == "--with-llama-server" ]]; then
  if ! command -v cmake >/dev/null; then
    if command -v apt-get >/dev/null; then
      SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO="sudo"
      $SUDO apt-get update -qq && $SUDO apt-get install -y -qq cmake >/dev/null
    fi
  fi
  bash ci/build-llama-server.sh >/dev/null
fi
echo "setup: done (.venv ready${1:+, llama-server built})" >&2
