# Metrics and health endpoints (issue 8 item 1): common/tf_metrics,
# common/tf_http, common/tf_rdstats.

# Unit: the registry's text (golden), registration rules, histogram buckets,
# concurrent updates while rendering, librdkafka statistics documents.
tf_unit_test(test_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_metrics.c TIMEOUT 60)
# Unit: the libmicrohttpd endpoint on an ephemeral loopback port, through
# libcurl (no other server needed).
tf_unit_test(test_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http.c
  LIBS PkgConfig::CURL TIMEOUT 60)

# A small real Kafka consumer serving tradeflow's metrics (the target of
# test_prometheus.sh while tradeflow-aggregate has no --metrics-addr).
add_executable(metrics_serve ${CMAKE_CURRENT_SOURCE_DIR}/integration/metrics_serve.c)
target_link_libraries(metrics_serve PRIVATE tfcommon PkgConfig::RDKAFKA)
set_target_properties(metrics_serve PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

# Integration: a real Prometheus server scrapes a running consumer and
# answers PromQL queries on tradeflow metrics.
tf_integration_test(metrics_prometheus
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_prometheus.sh TIMEOUT 180)
tf_integration_test(produce_metrics
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_produce_metrics.sh TIMEOUT 120)
