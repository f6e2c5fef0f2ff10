# tradeflow-produce and common/tf_kafka (issue 4).

# Unit: the -X / -F configuration helpers (no server needed).
tf_unit_test(test_produce_kafkaconf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_produce_kafkaconf.c)
# Unit: the reader thread hand-off of tradeflow-produce (no server needed).
tf_unit_test(test_produce_feed
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_produce_feed.c ${CMAKE_SOURCE_DIR}/producers/tf_produce_feed.c
  LIBS tfinput)

# A read_committed dump of a topic, decoded with the project's codec.
if(TARGET tfcodec)
  add_executable(test_produce_dump ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_produce_dump.c)
  target_link_libraries(test_produce_dump PRIVATE tfcodec tfcommon PkgConfig::RDKAFKA)
  set_target_properties(test_produce_dump PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endif()

# Integration, against the real broker of deploy/stack.sh (TRADEFLOW_BROKERS).
foreach(_t roundtrip rejects crash live sources watch)
  tf_integration_test(produce_${_t}
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_produce_${_t}.sh TIMEOUT 180)
endforeach()
# Unit: the watched inbox's helpers (name rule, scan, move + report, identities).
tf_unit_test(test_inbox
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_inbox.c ${CMAKE_SOURCE_DIR}/producers/tf_inbox.c
  LIBS PkgConfig::RDKAFKA)
target_include_directories(test_inbox PRIVATE ${CMAKE_SOURCE_DIR}/producers)
