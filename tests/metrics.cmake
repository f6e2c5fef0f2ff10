# Metrics and health endpoints (issue 8 item 1): common/tf_metrics,
# common/tf_http, common/tf_rdstats.

# Unit: the registry's text (golden), registration rules, histogram buckets,
# concurrent updates while rendering, librdkafka statistics documents.
tf_unit_test(test_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_metrics.c TIMEOUT 60)
# Unit: the libmicrohttpd endpoint on an ephemeral loopback port, through
# libcurl (no other server needed).
tf_unit_test(test_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http.c
  LIBS PkgConfig::CURL TIMEOUT 60)
