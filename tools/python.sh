# Sourced by the numbered entry points: choose the Python that has our dependencies and make the
# repository importable from any working directory (relative paths stay relative to where you are).
# Defaults: the project's virtual environment if it exists, else python3 on PATH; set PYTHON to override.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "${repo_root}/.venv/bin/python" ]]; then PYTHON="${repo_root}/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
