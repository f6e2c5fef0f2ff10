#!/usr/bin/env bash
# Issue 14 items 2 and 5: the consumer validates decoded records with the
# producer's rules (tf_record_validate, shared), and dead-letter reasons say
# what is wrong. On the topic, among good records:
#   - a hand-crafted Avro message whose value_usd (10^16 USD) exceeds the
#     schema's decimal(18,2): the producer cannot encode it, the consumer
#     must not apply it -> DLQ "invalid value_usd: value 10000000000000000.00
#     exceeds the schema's decimal(18,2) ...";
#   - an empty message and a NULL one -> "undecodable: empty message";
#   - a message cut to 10 and to 25 bytes -> "truncated at byte N of 10/25".
# The good records are applied (oracle), --exit-at-end exits 0.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_validate
tf_new_workdir W
T="$(tf_topic validate)"
DLQ="$(tf_topic validate_dlq)"
D="$TF_SOURCE_DIR/tests/integration/agg"
tf_create_topic "$T" 1
produce customs "$T" "$D/semantics2.csv"

hex2bin() { "$TF_PYTHON" -c "import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))" "$1"; }
# A valid message of 123.45 USD (12345 cents: bytes 30 39, length 2 -> 04),
# then the same with the 8-byte value 10^18 cents (0de0b6b3a7640000,
# length 8 -> zigzag 10).
good="$(printf 'customs|v1|0|CHN|USA|export|2020-01||123.45||\n' |
    "$TF_BUILD_DIR/tests/codec_tool" encode)"
case "$good" in *043039*) ;; *) fail "unexpected encoding: $good" ;; esac
[ "$(echo "$good" | grep -o 043039 | wc -l)" = 1 ] || fail "value bytes not unique in $good"
big="${good/043039/100de0b6b3a7640000}"
hex2bin "$big" >"$W/big.bin"
printf 'customs|v1|0|CHN|USA|export|2020-01||99999999999999999.99||\n' |
    "$TF_BUILD_DIR/tests/codec_tool" encode | grep -q '^ERROR' ||
    fail "the producer side encodes a value beyond decimal(18,2)"
hex2bin "$good" | head -c 10 >"$W/cut10.bin"
hex2bin "$good" | head -c 25 >"$W/cut25.bin"
for f in big cut10 cut25; do
    kcat -P -b "$TRADEFLOW_BROKERS" -t "$T" -p 0 -k "CHN|USA" "$W/$f.bin" ||
        fail "kcat could not produce $f"
done
# An empty value, and a NULL one (kcat -Z: an empty value is sent as NULL).
printf 'CHN|USA:\n' | kcat -P -b "$TRADEFLOW_BROKERS" -t "$T" -p 0 -K: || fail "kcat empty"
printf 'CHN|USA:\n' | kcat -P -b "$TRADEFLOW_BROKERS" -t "$T" -p 0 -K: -Z || fail "kcat NULL"
expect "an empty and a NULL message on the topic" \
    "$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$T" -e -q -Z -f '%S\n' | grep -cE '^(0|-1)$' || true)" 2
produce customs "$T" "$D/semantics3.csv"

aggregate "grp-$T" "$T" -- --dlq-topic "$DLQ"
kcat -C -b "$TRADEFLOW_BROKERS" -t "$DLQ" -e -q -f '%h\n' >"$W/headers.txt"
expect "dead letters" "$(grep -c 'tf.reason=' "$W/headers.txt")" 5
grep -q "tf.reason=invalid value_usd: value 10000000000000000.00 exceeds the schema's decimal(18,2) (at most 9999999999999999.99)" \
    "$W/headers.txt" || fail "no precision reason: $(cat "$W/headers.txt")"
expect "empty and NULL messages" "$(grep -c 'tf.reason=undecodable: empty message' "$W/headers.txt")" 2
grep -Eq 'tf.reason=undecodable: truncated at byte [0-9]+ of 10' "$W/headers.txt" ||
    fail "no 'truncated at byte N of 10': $(cat "$W/headers.txt")"
grep -Eq 'tf.reason=undecodable: truncated at byte [0-9]+ of 25' "$W/headers.txt" ||
    fail "no 'truncated at byte N of 25': $(cat "$W/headers.txt")"
! grep -q 'unknown framing' "$W/headers.txt" || fail "a misleading reason: $(cat "$W/headers.txt")"
expect "the oversized value is not in facts" "$(q "select count(*) from tradeflow.facts where record_id = 'v1'")" 0
check_oracle "$W" --customs "$D/semantics2.csv" --customs "$D/semantics3.csv"
echo "1 passed, 0 failed"
