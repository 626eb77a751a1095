#!/usr/bin/env bash
# The integration suite at fixed instants across a week and a month end (tests/clock.py's INSTANTS), on SQLite.
# The main run covers the default instant; `make test` calls this for the others, so a rule that depends on the
# weekday or the month cannot hide. (Tests marked `install` build a wheel or a demo, `fuzz` ones do not depend on the instant: once is enough.) Usage: scripts/test_at_instants.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
DEFAULT="$("$PY" -c 'from tests.clock import INSTANTS; print(INSTANTS[1])')"
for at in $("$PY" -c 'from tests.clock import INSTANTS; print(" ".join(INSTANTS))'); do
  [ "$at" = "$DEFAULT" ] && continue
  echo "== integration suite at $at (SQLite)"
  KIPIMO_TEST_NOW="$at" KIPIMO_TEST_POSTGRES_URL= KIPIMO_REQUIRE_POSTGRES=0 \
    "$PY" -m pytest -q -p no:cacheprovider tests/integration -m "not postgres and not install and not fuzz" -x
done
