# suites of the html format of `skype-etl export` (src/archive/html_*.cpp)
skype_etl_add_test(html_escape_tests SOURCES html_escape_tests.cpp LIBS skype_etl_archive
  LABELS unit)
# Renders the pages in headless Chromium when it is installed (skips with a message if not);
# pictures go to ${CMAKE_CURRENT_BINARY_DIR}/archive_html/.
skype_etl_add_test(html_writer_tests SOURCES html_writer_tests.cpp
  LIBS skype_etl_archive skype_etl_test_support nlohmann_json::nlohmann_json LABELS unit)
target_compile_definitions(html_writer_tests PRIVATE
  SKYPE_ETL_TEST_OUTPUT_DIR="${CMAKE_CURRENT_BINARY_DIR}/archive_html")
