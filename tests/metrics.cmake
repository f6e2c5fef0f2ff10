# Metrics and health endpoints (issue 8 item 1): common/tf_metrics,
# common/tf_http, common/tf_rdstats.

# Unit: the registry's text (golden), registration rules, histogram buckets,
# concurrent updates while rendering, librdkafka statistics documents.
tf_unit_test(test_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_metrics.c TIMEOUT 60)
# Unit: the libmicrohttpd endpoint on an ephemeral loopback port, through
# libcurl (no other server needed).
tf_unit_test(test_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http.c
  LIBS PkgConfig::CURL TIMEOUT 60)

# Integration: a real Prometheus server scrapes a running tradeflow-aggregate
# and answers PromQL queries on tradeflow metrics.
tf_integration_test(metrics_prometheus
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_prometheus.sh TIMEOUT 180)
tf_integration_test(produce_metrics
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_produce_metrics.sh TIMEOUT 240)
# It stops and restarts the shared stack's broker: nothing may run beside it.
set_tests_properties(produce_metrics PROPERTIES RUN_SERIAL TRUE)
