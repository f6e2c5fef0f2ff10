# The .deb: build from a clean copy, dpkg -i, demo flow with the installed
# programs, man page, systemd-analyze verify, dpkg --purge (issue 8, item 4).
#
# It builds the project once more and installs a package system-wide (root
# only), which takes a few minutes: opt-in, TF_TEST_PACKAGE=1 in ctest's
# environment; otherwise it reports "skipped". It uses the servers of the
# environment (deploy/stack.sh env) when TRADEFLOW_BROKERS and PGHOST are
# set, else a private stack on ports 49292/49632.
tf_integration_test(packaging_deb
  COMMAND ${CMAKE_SOURCE_DIR}/deploy/package-test.sh --ctest --stack auto
  TIMEOUT 900)
set_tests_properties(packaging_deb PROPERTIES SKIP_RETURN_CODE 77 RUN_SERIAL ON)
