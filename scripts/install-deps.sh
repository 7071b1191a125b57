#!/usr/bin/env bash
# Installs what rnnc needs on Debian/Ubuntu beyond the Swift toolchain: the LLVM OpenMP
# runtime (libomp-dev) that generated libraries link against. Safe to run again.
set -euo pipefail
if ! command -v swift >/dev/null 2>&1; then
    echo "rnnc needs the Swift toolchain (6.0 or later) on PATH: https://www.swift.org/install" >&2
    exit 1
fi
if ! dpkg -s libomp-dev >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "installing libomp-dev (the OpenMP runtime for generated libraries)..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libomp-dev >/dev/null
fi
