# Sourced by run_demo.sh and run_tests.sh: create .venv and install requirements.txt into it,
# once per version of requirements.txt (a stamp file remembers which one is installed).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv"
stamp="${venv}/.requirements.sha256"
wanted="$(sha256sum "${repo_root}/requirements.txt" | cut -d' ' -f1)"
if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${wanted}" ]]; then
  echo "Setting up ${venv} (first time: a few minutes, PyTorch is large)"
  "${BOOTSTRAP_PYTHON:-python3}" -m venv "${venv}"
  "${venv}/bin/python" -m pip install --quiet --upgrade pip
  "${venv}/bin/python" -m pip install --quiet -r "${repo_root}/requirements.txt"
  echo "${wanted}" > "${stamp}"
fi
export PYTHON="${venv}/bin/python"
