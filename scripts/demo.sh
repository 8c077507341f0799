#!/usr/bin/env bash
# The demo: validates and prints the shipped workflows.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
"$build/cli/usher" validate workflows/
