#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (CPU, static, no OpenSSL, no web UI) into
# ci/cache/llama-server/bin/llama-server, from the llama.cpp tree vendored in the
# llama-cpp-python sdist on PyPI (the only registry reachable from CI).
#
# Skips the build when the binary is already there. Needs: cmake, a C++ compiler, pip.
# Prints the path of the binary on its last line.
#
#   bash ci/build-llama-server.sh            # build (≈6 min on 2 cores) or reuse the cache
#   LLAMA_CPP_PYTHON_VERSION=0.3.36 JOBS=2   # overridable
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/ci/cache/llama-server"
bin="$cache/bin/llama-server"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
jobs="${JOBS:-2}"

if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
  echo "llama-server: cached" >&2
  echo "$bin"
  exit 0
fi

for tool in cmake c++ python3; do
  command -v "$tool" >/dev/null || { echo "llama-server: missing '$tool' (apt-get install -y cmake g++)" >&2; exit 1; }
done

work="$cache/src"
rm -rf "$work"
mkdir -p "$work" "$cache/bin"

echo "llama-server: fetching llama-cpp-python==$version sdist" >&2
python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
  "llama-cpp-python==$version" -d "$work"
tarball="$(ls "$work"/llama_cpp_python-*.tar.gz | head -n1)"
tar -xzf "$tarball" -C "$work"
src="$(ls -d "$work"/llama_cpp_python-*/vendor/llama.cpp | head -n1)"

# LLAMA_USE_PREBUILT_UI would download the web UI at configure time; there is no network for it.
echo "llama-server: configuring $src" >&2
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >&2

echo "llama-server: building with $jobs jobs" >&2
cmake --build "$work/build" --target llama-server -j"$jobs" >&2

cp "$work/build/bin/llama-server" "$bin.tmp"
mv "$bin.tmp" "$bin"
rm -rf "$work"
"$bin" --version >&2 || true
echo "$bin"
