#!/usr/bin/env bash
# lint_tests.sh - static checks of the shell tests (no servers; label unit).
# Patterns that make a check unable to fail, or that bypass lib.sh's single
# clean-up, are refused with FILE:LINE:
#   - `trap ... EXIT` (or `builtin trap`) in a file that uses lib.sh: it
#     replaces lib.sh's EXIT trap, so databases, topics and jobs stay behind
#     (use tf_on_exit CMD);
#   - a check whose verdict is thrown away: `grep -q ... || true`,
#     `expect/tf_expect/tf_check... || true`;
#   - a function that redefines tf_fail, or a `fail`/`expect` outside agg_lib.sh
#     (lib.sh's tf_fail / tf_expect are the one way to fail).
# A line may be exempted with a trailing `# lint: ok (REASON)`.
#
#   tests/integration/lint_tests.sh [FILE...]   (default: every test script)
set -uo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ $# -eq 0 ]; then
    set -- "$SRC"/tests/integration/*.sh "$SRC"/tests/oracle/*.sh
fi
bad=0
files=0
report() { # FILE LINE-NUMBER TEXT WHY
    echo "$1:$2: $4: $3" >&2
    bad=$((bad + 1))
}
for f in "$@"; do
    [ -f "$f" ] || continue
    base="$(basename "$f")"
    [ "$base" = lint_tests.sh ] && continue
    files=$((files + 1))
    uses_lib=0
    grep -Eq '(lib\.sh|test_produce_lib\.sh)"?$|/lib\.sh"|test_produce_lib\.sh"' "$f" && uses_lib=1
    [ "$base" = lib.sh ] && uses_lib=0
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        case "$line" in *"# lint: ok"*) continue ;; esac
        code="${line%%#*}"
        [ -n "${code// /}" ] || continue
        if [ "$uses_lib" = 1 ]; then
            if [[ "$code" =~ (^|[;&|[:space:]])(builtin[[:space:]]+)?trap[[:space:]].*[[:space:]](EXIT|0)([[:space:]]|$) ]] ||
                [[ "$code" =~ builtin[[:space:]]+trap ]]; then
                report "$f" "$n" "$line" "sets an EXIT trap under lib.sh (use tf_on_exit CMD)"
            fi
        fi
        if [[ "$code" =~ grep[[:space:]]+(-[a-zA-Z]*q[a-zA-Z]*|--quiet)[^|]*\|\|[[:space:]]*true ]]; then
            report "$f" "$n" "$line" "the verdict of grep -q is thrown away (|| true)"
        fi
        if [[ "$code" =~ (^|[[:space:]])(tf_expect|expect|tf_check|tf_check_eq|tp_check|tp_eq)[[:space:]].*\|\|[[:space:]]*true ]]; then
            report "$f" "$n" "$line" "a check's verdict is thrown away (|| true)"
        fi
        if [[ "$code" =~ ^[[:space:]]*tf_fail[[:space:]]*\(\) ]] && [ "$base" != lib.sh ]; then
            report "$f" "$n" "$line" "redefines tf_fail (lib.sh's is the one way to fail)"
        fi
        if [[ "$code" =~ ^[[:space:]]*(fail|expect)[[:space:]]*\(\) ]] && [ "$base" != agg_lib.sh ] &&
            [ "$uses_lib" = 1 ]; then
            report "$f" "$n" "$line" "defines its own ${BASH_REMATCH[1]} (use lib.sh's tf_fail / tf_expect)"
        fi
    done <"$f"
done
[ "$files" -gt 0 ] || { echo "lint_tests: no file checked" >&2; exit 1; }
echo "lint_tests: $files files, $bad problems"
[ "$bad" -eq 0 ]
