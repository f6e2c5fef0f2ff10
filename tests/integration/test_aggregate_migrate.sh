#!/usr/bin/env bash
# Migrations: applied by `migrate`, idempotent, safe when several instances
# start at once; the reporting views are readable by tradeflow_reader, which
# can neither write nor read the internal tables.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_migrate
tf_new_workdir W
AGG="$(tf_bin tradeflow-aggregate)"
pids=()
for i in 1 2 3 4; do
    "$AGG" migrate --log-level warning &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "concurrent migrate failed"; done
n="$(q "select count(*) from tradeflow.schema_migrations")"
[ "$n" -ge 3 ] || fail "expected at least 3 migrations, got $n"
"$AGG" migrate --log-level warning || fail "second migrate failed"
expect "migrations applied once" "$(q "select count(*) from tradeflow.schema_migrations")" "$n"
# The read-only role.
psql -X -q -v ON_ERROR_STOP=1 -c "set role tradeflow_reader; select count(*) from reporting.partner_ranking; select count(*) from reporting.partner_monthly" >/dev/null ||
    fail "tradeflow_reader cannot read the reporting views"
# refused SQL: the statement must fail FOR WANT OF THE RIGHT (not for any
# other reason, such as a typo or a missing table).
refused() { # DESCRIPTION SQL [psql options...]
    local what="$1" sql="$2" out
    shift 2
    if out="$(psql -X -q -v ON_ERROR_STOP=1 "$@" -c "$sql" 2>&1)"; then
        fail "$what: allowed"
    fi
    grep -Eq "permission denied|must be owner" <<<"$out" ||
        fail "$what: failed, but not for want of the right: $out"
    echo "ok: $what refused ($(grep -m1 -Eo '(permission denied|must be owner).*' <<<"$out"))"
}
refused "tradeflow_reader reading internal tables" "set role tradeflow_reader; select count(*) from tradeflow.facts"
refused "tradeflow_reader writing" "set role tradeflow_reader; delete from reporting.partner_ranking"
echo "ok: reader role is read-only and sees only the reporting schema"
# The consumer as a least-privilege login role in tradeflow_writer: it
# applies batches (migrations are up to date: no DDL needed) but can neither
# change the schema nor the group reference table.
APP="tft_app_$$"
psql -X -q -d postgres -c "DROP ROLE IF EXISTS $APP" -c "CREATE ROLE $APP LOGIN IN ROLE tradeflow_writer" >/dev/null ||
    fail "cannot create the app role"
tf_on_exit "psql -X -q -c 'DROP OWNED BY $APP CASCADE' -c 'DROP ROLE IF EXISTS $APP' >/dev/null 2>&1"
TC="$(tf_topic writer)"
produce customs "$TC" "$TF_SOURCE_DIR/tests/integration/agg/semantics2.csv"
PGUSER="$APP" aggregate "grp-$TC" "$TC"
expect "facts applied by the writer role" "$(q "select count(*) from tradeflow.facts")" 3
refused "the writer role dropping tables" "drop table tradeflow.facts" -U "$APP"
refused "the writer role editing the group reference table" \
    "insert into tradeflow.group_members values ('X','USA')" -U "$APP"
refused "the writer role creating tables" "create table tradeflow.x (i int)" -U "$APP"
echo "ok: the consumer runs as a non-superuser role without DDL rights"
# A changed migration is refused.
q "update tradeflow.schema_migrations set md5 = 'x' where version = 1" >/dev/null
if "$AGG" migrate --log-level error 2>"$W/changed.log"; then
    fail "a changed migration was not detected"
fi
grep -q "migration .* was changed after it was applied" "$W/changed.log" ||
    fail "migrate failed, but not because of the changed migration: $(cat "$W/changed.log")"
echo "ok: a changed migration is refused"
echo "1 passed, 0 failed"
