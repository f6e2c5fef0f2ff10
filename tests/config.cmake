# Shared configuration module (issue 8 item 3).
tf_unit_test(test_config SOURCES unit/test_config.c)
add_test(NAME config_docs_current
  COMMAND ${CMAKE_SOURCE_DIR}/deploy/gen-config-docs.sh --check ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(config_docs_current PROPERTIES LABELS unit)
