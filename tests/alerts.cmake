# Ranking-shift alerts (issue 6): the relay to Kafka, the follower CLI, NOTIFY
# and the outbox, on the real stack (deploy/stack.sh). Python peers
# (psycopg, confluent-kafka, fastavro) come from $TF_PYTHON, else the project
# venv, else python3.
foreach(_t exact crash)
  tf_integration_test(alerts_${_t}
    COMMAND sh -c "TF_PYTHON=\"\${TF_PYTHON:-$(test -x ${CMAKE_SOURCE_DIR}/.venv/bin/python && echo ${CMAKE_SOURCE_DIR}/.venv/bin/python || echo python3)}\" exec ${CMAKE_SOURCE_DIR}/tests/integration/test_alerts_${_t}.sh"
    TIMEOUT 400)
endforeach()
