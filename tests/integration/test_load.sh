#!/usr/bin/env bash
# Load, briefly (bench/load.sh runs the 10-minute version): a sustained feed
# at a fixed rate through tradeflow-produce's live mode and a running
# tradeflow-aggregate (500 records/s here, well within a loaded 2-core CI
# machine; bench/load.sh defaults to 1000); RSS stays flat, the lag drains,
# the tables are exact.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
tf_require_stack
tf_new_db load
export TF_LOAD_DB="$PGDATABASE"
# AddressSanitizer keeps freed memory in quarantine (256 MiB by default), so
# RSS grows in a sanitizer build whatever the program does: no RSS check there.
rss=()
[ "$TF_TIMEOUT_SCALE" = 1 ] || rss=(--no-rss-check)
# (Not exec: lib.sh's clean-up must still drop the database at exit.)
"$TF_SOURCE_DIR/bench/load.sh" --rate "${TF_LOAD_RATE:-500}" --seconds "${TF_LOAD_SECONDS:-50}" --sample 3 \
    --build "$TF_BUILD_DIR" --check "${rss[@]}" --out "$TF_BUILD_DIR/test-load-figures.txt"
