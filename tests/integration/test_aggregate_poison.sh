#!/usr/bin/env bash
# Poison messages (random bytes, wrong magic, truncated Avro, unknown
# fingerprint) go to the dead-letter topic with the reason and the source
# topic/partition/offset in headers; the good records around them are applied.
set -euo pipefail
. "$TF_SOURCE_DIR/tests/integration/lib.sh"
. "$TF_SOURCE_DIR/tests/integration/agg_lib.sh"
tf_require_stack
tf_new_db agg_poison
tf_new_workdir W
TC="$(tf_topic poison)"
DLQ="$(tf_topic dlq)"
D="$TF_SOURCE_DIR/tests/integration/agg"
produce customs "$TC" "$D/semantics2.csv"

# A real message, to truncate and to corrupt.
kcat -C -b "$TRADEFLOW_BROKERS" -t "$TC" -c 1 -e -q -f '%s' >"$W/good.bin" ||
    fail "kcat could not read a message"
[ -s "$W/good.bin" ] || fail "no message to corrupt"
head -c 12 "$W/good.bin" >"$W/truncated.bin"
printf 'not avro at all' >"$W/random.bin"
{ printf '\xc3\x01\xde\xad\xbe\xef\xde\xad\xbe\xef'; tail -c +11 "$W/good.bin"; } >"$W/unknownfp.bin"
{ printf '\x00\x00\x00\x00\x07'; tail -c +11 "$W/good.bin"; } >"$W/noregistry.bin"
# Valid Avro carrying invalid values (partner = reporter; a lower-case code):
# decodable, but they fail validation.
printf 'customs|p1|0|CHN|CHN|export|2020-01||1.00||\ncustoms|p2|0|CHN|usa|export|2020-01||1.00||\n' |
    "$TF_BUILD_DIR/tests/codec_tool" encode >"$W/invalid.hex" || fail "codec_tool failed"
grep -q ERROR "$W/invalid.hex" && fail "codec_tool refused: $(cat "$W/invalid.hex")"
sed -n 1p "$W/invalid.hex" | "$TF_PYTHON" -c "import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))" >"$W/invalid1.bin"
sed -n 2p "$W/invalid.hex" | "$TF_PYTHON" -c "import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))" >"$W/invalid2.bin"
for f in truncated random unknownfp noregistry invalid1 invalid2; do
    kcat -P -b "$TRADEFLOW_BROKERS" -t "$TC" -p 0 -k "CHN|POISON" "$W/$f.bin" ||
        fail "kcat could not produce $f"
done
produce customs "$TC" "$D/semantics3.csv"

aggregate "grp-$TC" "$TC" -- --dlq-topic "$DLQ"
expect "dead letters" \
    "$(kcat -C -b "$TRADEFLOW_BROKERS" -t "$DLQ" -e -q -f '%h\n' | grep -c 'tf.reason=')" 6
kcat -C -b "$TRADEFLOW_BROKERS" -t "$DLQ" -e -q -f '%h\n' >"$W/headers.txt"
grep -q "tf.source.topic=$TC" "$W/headers.txt" || fail "no source topic header"
grep -q "tf.source.offset=" "$W/headers.txt" || fail "no source offset header"
grep -q "tf.source.partition=0" "$W/headers.txt" || fail "no source partition header"
grep -q "tf.reason=invalid partner" "$W/headers.txt" || fail "no validation reason: $(cat "$W/headers.txt")"
expect "good records applied around the poison" \
    "$(q "select count(*) from tradeflow.facts")" 4
check_oracle "$W" --customs "$D/semantics2.csv" --customs "$D/semantics3.csv"
echo "1 passed, 0 failed"
