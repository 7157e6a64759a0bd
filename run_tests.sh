#!/usr/bin/env bash
# Set up .venv (once) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup_venv.sh
exec "${PYTHON}" -m pytest "$@"
