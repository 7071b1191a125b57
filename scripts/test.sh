#!/usr/bin/env bash
# The README's test command: set up, then run every test (unit, pass, golden, CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build --disable-swift-testing
