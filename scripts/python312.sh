#!/usr/bin/env bash
# Prints a folder that holds a working Python 3.12, to put first on PATH for `sam build` (the
# functions' runtime is python3.12, and SAM builds them with a local interpreter of that
# version). Looks at $PYTHON312, then python3.12 on PATH, then pyenv. When none is found it
# says how to get one and exits 1.
set -u

is_312() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }

if [ -n "${PYTHON312:-}" ]; then
  if is_312 "$PYTHON312"; then dirname "$(command -v "$PYTHON312")"; exit 0; fi
  echo "PYTHON312=$PYTHON312 is not a working Python 3.12 interpreter." >&2
  exit 1
fi
if command -v python3.12 >/dev/null 2>&1 && is_312 python3.12; then
  dirname "$(command -v python3.12)"
  exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  version=$(pyenv latest 3.12 2>/dev/null) && prefix=$(pyenv prefix "$version" 2>/dev/null) \
    && is_312 "$prefix/bin/python3.12" && { echo "$prefix/bin"; exit 0; }
fi
cat >&2 <<'HOW'
sam build needs a Python 3.12 interpreter (the Lambda runtime is python3.12) and found none:
not $PYTHON312, not a python3.12 on PATH (a pyenv shim counts only when 3.12 is selected),
not a 3.12 in pyenv. Get one, then run `make build` again:
  - with pyenv:           pyenv install 3.12        (found from then on; no need to select it)
  - Ubuntu 24.04:         sudo apt-get install python3.12 python3.12-venv
  - elsewhere:            any CPython 3.12 (python.org, your OS packages), then
                          make build PYTHON312=/path/to/python3.12
(Debian 12 ships only 3.11 and Debian 13 only 3.13: use pyenv or a python.org build there.)
HOW
exit 1
