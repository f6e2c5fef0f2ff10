# The .deb: build from a clean copy, dpkg -i, demo flow with the installed
# programs, man pages, systemd-analyze verify, dpkg --purge (issue 8, item 4).
#
# About 45 s here (the build of the copy included), so it always runs, but
# only as root (it installs a package system-wide: a test machine) and only
# in plain builds: the package it builds does not depend on the build under
# test, so sanitizer and fuzzing builds would only repeat it. TF_TEST_PACKAGE=0
# in ctest's environment skips it. It uses the servers of the environment
# (deploy/stack.sh env) when TRADEFLOW_BROKERS and PGHOST are set, else a
# private stack on ports 49292/49632.
if(NOT TF_SANITIZE AND NOT TF_FUZZ)
  tf_integration_test(packaging_deb
    COMMAND ${CMAKE_SOURCE_DIR}/deploy/package-test.sh --ctest --stack auto
    TIMEOUT 600)
  # RUN_SERIAL: it builds with two jobs and holds dpkg.
  set_tests_properties(packaging_deb PROPERTIES SKIP_RETURN_CODE 77 RUN_SERIAL ON)
endif()
