# tradeflow-report (issue 8 item 5): the real pipeline fills a database, then
# the report in CSV, text and HTML is checked against the views, and the HTML
# in headless Chromium (Debian's chromium). Needs the stack (deploy/stack.sh).
# Artifacts: <build>/tests/report-artifacts/ (HTML, rendered DOM, screenshot).
tf_integration_test(report
  COMMAND sh -c "TF_PYTHON=\"\${TF_PYTHON:-$(test -x ${CMAKE_SOURCE_DIR}/.venv/bin/python && echo ${CMAKE_SOURCE_DIR}/.venv/bin/python || echo python3)}\" exec ${CMAKE_SOURCE_DIR}/tests/integration/test_report.sh"
  TIMEOUT 300)

# The renderers on a hand-made report (no server): escaping, series
# attributes with gaps, number display, CSV quoting, the text table.
tf_unit_test(test_report_render SOURCES unit/test_report_render.c LIBS tfreport)
