#!/usr/bin/env bash
# Fuzzing CI step: tests/test_fuzz_checkpoint.py (the checkpoint loader over bytes, ~20 s for
# CKPT_FUZZ_EXAMPLES=1000 per property, bounded by CKPT_FUZZ_TIMEOUT, default 60 s), then
# tests/test_fuzz.py (hypothesis: random shapes, dtypes, layouts, values and
# call sequences, native against the reference) with many more examples and a fresh random
# seed, bounded in time. Assumes fastbp is installed in the active environment (run it after
# .ci/run, or inside the sanitizer venv: FUZZ_PYTHON=/tmp/fastbp-san-venv/bin/python).
#
#   .ci/fuzz.sh                      # ~60-90 s; FUZZ_EXAMPLES (default 1500), FUZZ_SEED,
#                                    # FUZZ_TIMEOUT (default 240 s) override
# A failure prints the seed and hypothesis' falsifying example; reproduce with
#   FASTBP_FUZZ_EXAMPLES=<n> python -m pytest tests/test_fuzz.py --hypothesis-seed=<seed>
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PY="${FUZZ_PYTHON:-python}"
SEED="${FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}"
export FASTBP_FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-1500}"
echo "fuzz.sh: seed $SEED, $FASTBP_FUZZ_EXAMPLES examples per property"
cd "${TMPDIR:-/tmp}"
timeout "${FUZZ_TIMEOUT:-240}" "$PY" -m pytest -q -x -p no:cacheprovider -W ignore::RuntimeWarning \
  "$ROOT/tests/test_fuzz.py" --hypothesis-seed="$SEED" --hypothesis-show-statistics \
  || { rc=$?; echo "fuzz.sh: FAILED (rc=$rc, seed $SEED)" >&2; exit "$rc"; }
FASTBP_FUZZ_EXAMPLES="${CKPT_FUZZ_EXAMPLES:-1000}" timeout "${CKPT_FUZZ_TIMEOUT:-60}" "$PY" -m pytest \
  -q -x -p no:cacheprovider "$ROOT/tests/test_fuzz_checkpoint.py" --hypothesis-seed="$SEED" \
  || { rc=$?; echo "fuzz.sh: checkpoint fuzzing FAILED (rc=$rc, seed $SEED)" >&2; exit "$rc"; }
echo "fuzz.sh: OK (seed $SEED)"
