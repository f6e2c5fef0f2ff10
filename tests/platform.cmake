# Kafka 4.x / Debian 13 platform (issue 17): what the linked librdkafka can
# do against Kafka 4.x, and the KIP-848 group protocol decision.

# Unit: tf_kafka_scram_hint and tf_kafka_use_kip848 over librdkafka versions
# this machine does not have (2.6.1, 2.12, 2.13), and the probe against a
# closed port and a fake non-Kafka listener.
tf_unit_test(test_kafka_versions SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_kafka_versions.c)

add_executable(kafka_probe ${CMAKE_CURRENT_SOURCE_DIR}/integration/kafka_probe.c)
target_link_libraries(kafka_probe PRIVATE tfcommon PkgConfig::RDKAFKA)
set_target_properties(kafka_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

# Integration: the probe against the test stack's broker (ConsumerGroupHeartbeat
# listed by Kafka 4.x, not by 3.9), and the decision tradeflow-aggregate logs.
tf_integration_test(platform_kafka
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_platform_kafka.sh TIMEOUT 120)
