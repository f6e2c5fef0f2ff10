# Ranking-shift alerts (issue 6): the relay to Kafka, the follower CLI, NOTIFY
# and the outbox, on the real stack (deploy/stack.sh; lib.sh picks $TF_PYTHON,
# which needs psycopg, confluent-kafka and fastavro).
foreach(_t exact crash)
  tf_integration_test(alerts_${_t}
    COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_alerts_${_t}.sh
    TIMEOUT 400)
endforeach()

# Filters and output forms of tradeflow-alerts (no servers).
tf_unit_test(test_alerts_format SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_alerts_format.c
  LIBS tfalerts)

# HTTP delivery (issue 19): Alertmanager (Debian's prometheus-alertmanager,
# started by the test on loopback) and webhooks to a local receiver.
tf_integration_test(alerts_deliver
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/test_alerts_deliver.sh
  TIMEOUT 500)
# Its configuration, summaries, payloads and retry rules (no servers).
tf_unit_test(test_deliver SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_deliver.c
  LIBS tfdeliver)
# alerts_deliver restarts the shared stack's PostgreSQL.
set_property(TEST alerts_deliver APPEND PROPERTY LABELS faults)
set_tests_properties(alerts_deliver PROPERTIES RUN_SERIAL TRUE)
