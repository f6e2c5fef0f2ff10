# shellcheck shell=bash
# sec_lib.sh - helpers for the security tests (issue 7 item 4). Source after
# tests/integration/lib.sh and agg_lib.sh.
#
#   sec_stack_up        a PRIVATE secured stack (deploy/stack.sh up --secure)
#                       in its own directory on free ports, stopped and
#                       removed at exit (lib.sh's tf_on_exit; SEC_KEEP=1 or
#                       TF_KEEP=1 keeps it); loads `env` and `env --secure`
#   sec_must_fail_within SECONDS LOG CMD...   CMD must exit non-zero (not by
#                       the timeout) within SECONDS; its output goes to LOG
#
# The stack's passwords are in files (TRADEFLOW_SCRAM_PASSWORD_FILE,
# TRADEFLOW_PG_PASSWORD_FILE); tests read them, never print them.

SEC_STACK="$TF_SOURCE_DIR/deploy/stack.sh"

sec_stack_up() {
    SEC_W="$(mktemp -d)"
    chmod 755 "$SEC_W" # PostgreSQL runs as the postgres user and must reach its data
    export TRADEFLOW_STACK_DIR="$SEC_W/stack"
    # Five consecutive free ports (PLAINTEXT, controller, SASL_PLAINTEXT,
    # SSL, SASL_SSL) and one for PostgreSQL.
    local kp pp
    read -r kp pp < <("$TF_PYTHON" - <<'PY'
import random, socket
def ok(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
random.seed()
while True:
    # Below the ephemeral range (32768-60999): a port free now could be
    # taken by an outgoing connection before the broker binds it.
    base = random.randrange(22000, 32000, 10)
    if all(ok(p) for p in range(base, base + 6)):
        break
print(base, base + 5)
PY
)
    export TRADEFLOW_KAFKA_PORT="$kp" TRADEFLOW_KAFKA_SECURE_PORT=$((kp + 2)) TRADEFLOW_PG_PORT="$pp"
    tf_on_exit sec_stack_down
    # The whole stack is removed at exit: lib.sh need not drop anything.
    tf_forget_resources
    "$SEC_STACK" up --fresh --secure || fail "cannot start the secured stack"
    eval "$("$SEC_STACK" env)"
    eval "$("$SEC_STACK" env --secure)"
    tf_require_stack
}

sec_stack_down() {
    tf_kill_jobs KILL
    "$SEC_STACK" down >/dev/null 2>&1 || true
    if [ -n "${SEC_KEEP:-}" ] || [ "${TF_KEEP:-0}" = 1 ]; then
        echo "SEC_KEEP: kept $SEC_W" >&2
    else
        rm -rf "$SEC_W"
    fi
}

# sec_must_fail_within SECONDS LOG CMD...: CMD exits non-zero on its own
# within SECONDS (a timeout is a hang, not a failure); output into LOG.
# Sets SEC_RC and SEC_SECS (read by the tests).
sec_must_fail_within() {
    local secs="$1" log="$2" t0
    shift 2
    t0=$SECONDS
    SEC_RC=0
    timeout -k 2 "$secs" "$@" >"$log" 2>&1 || SEC_RC=$?
    # shellcheck disable=SC2034
    SEC_SECS=$((SECONDS - t0))
    [ "$SEC_RC" -ne 0 ] || { tail -5 "$log" >&2; fail "$* succeeded; it should have failed"; }
    if [ "$SEC_RC" -eq 124 ] || [ "$SEC_RC" -eq 137 ]; then
        tail -5 "$log" >&2
        fail "$1 did not exit within $secs s (a hang, not a clear failure)"
    fi
}

# sec_scram_broken: true when this build's librdkafka (before 2.6.1) cannot
# log in with SCRAM to the stack's Kafka (4.0 or newer) at all, right
# password or not (librdkafka #4895, docs/stack.md): Debian 12's 2.0.2
# against the default Kafka 4.x. The security tests then check that refusal
# and the programs' explanation, and run the rest over TLS without SASL.
# Call after sec_stack_up.
sec_scram_broken() {
    local rv kv ma mi re
    rv="$("$(tf_bin tradeflow-produce)" --version 2>/dev/null | sed -n 's/.*(librdkafka \([0-9][0-9.]*\).*/\1/p')"
    kv="$(sed -n 's/^KAFKA_VERSION=//p' "$TRADEFLOW_STACK_DIR/stack.conf")"
    [ -n "$rv" ] && [ -n "$kv" ] || fail "cannot tell the librdkafka ($rv) or Kafka ($kv) version"
    IFS=. read -r ma mi re <<<"$rv"
    [ "${kv%%.*}" -ge 4 ] || return 1
    [ "$ma" -lt 2 ] && return 0
    [ "$ma" -eq 2 ] && { [ "$mi" -lt 6 ] || { [ "$mi" -eq 6 ] && [ "${re:-0}" -lt 1 ]; }; }
}
