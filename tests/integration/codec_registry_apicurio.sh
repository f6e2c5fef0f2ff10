#!/usr/bin/env bash
# codec_registry_apicurio.sh - the codec's Confluent framing against a real
# registry: Apicurio Registry's Confluent-compatible API. Uses
# $TRADEFLOW_REGISTRY_URL when set (deploy/stack.sh up --registry), else starts
# one with deploy/registry.sh in a temporary state directory and stops it.
# A producer-side codec_tool registers the schemas under <topic>-value; a
# fresh consumer-side codec_tool (empty cache) fetches them by id.
set -euo pipefail
TOOL="$1"
SRC="${TF_SOURCE_DIR:?}"
fail=0
pass=0
ok() { pass=$((pass + 1)); }
bad() {
    echo "FAIL: $*" >&2
    fail=$((fail + 1))
}

started=""
if [ -z "${TRADEFLOW_REGISTRY_URL:-}" ]; then
    export TRADEFLOW_STACK_DIR
    TRADEFLOW_STACK_DIR="$(mktemp -d /tmp/tf-codec-registry.XXXXXX)"
    started=1
    trap 'bash "$SRC/deploy/registry.sh" down || true; rm -rf "$TRADEFLOW_STACK_DIR"' EXIT
    eval "$(bash "$SRC/deploy/registry.sh" up)"
fi
URL="$TRADEFLOW_REGISTRY_URL"
topic="codec-it-$$-$RANDOM"

lines=(
    "customs|it-1|2|CHN|VNM|export|2020-11|8517|609580000000.12|1234.567|kg"
    "customs|it-2|0|CHN|THA|import|2020-02||85320000000.00||"
    "investment|it-3|1|CHN|ASEAN|outward|2020-09|Manufacturing|10720000000.00"
    "alert|9|customs|CHN|total|ytd|group|2020-11|ASEAN|2|1|60958000000.00|shift|1606780800123456"
)
mapfile -t hexes < <(printf '%s\n' "${lines[@]}" | "$TOOL" --registry "$URL" --topic "$topic" encode)
[ "${#hexes[@]}" -eq 4 ] && ok || bad "encode gave ${#hexes[@]} lines: ${hexes[*]}"
for h in "${hexes[@]}"; do
    case "$h" in
    00*) ok ;;
    *) bad "not Confluent-framed: $h" ;;
    esac
done
# Three schemas, three distinct ids (customs, investment, alert).
ids="$(for h in "${hexes[@]}"; do echo "${h:2:8}"; done | sort -u | wc -l)"
[ "$ids" -eq 3 ] && ok || bad "expected 3 schema ids, got $ids"
# The subject exists in the registry.
subjects="$(curl -fsS -m 10 "$URL/subjects")"
case "$subjects" in
*"\"$topic-value\""*) ok ;;
*) bad "subject $topic-value not in $subjects" ;;
esac
# A consumer with an empty cache reads them back.
mapfile -t back < <(printf '%s\n' "${hexes[@]}" | "$TOOL" --registry "$URL" decode)
for i in 0 1 2 3; do
    [ "${back[$i]:-}" = "${lines[$i]}" ] && ok || bad "decoded '${back[$i]:-}' != '${lines[$i]}'"
done
# An id the registry does not know is refused with a clear error.
out="$(echo "00""7ffffff0""00" | "$TOOL" --registry "$URL" decode)"
case "$out" in
ERROR*"unknown schema id"*) ok ;;
*) bad "unknown id: $out" ;;
esac
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
