# Suites of the extract component.
skype_etl_add_test(export_reader_tests SOURCES export_reader_tests.cpp
  LIBS skype_etl_extract skype_etl_test_support nlohmann_json::nlohmann_json LABELS unit)
skype_etl_add_test(extract_error_tests SOURCES extract_error_tests.cpp
  LIBS skype_etl_extract skype_etl_test_support LABELS unit)
skype_etl_add_test(media_writer_tests SOURCES media_writer_tests.cpp
  LIBS skype_etl_extract skype_etl_test_support LABELS unit)
skype_etl_add_test(input_file_tests SOURCES input_file_tests.cpp
  LIBS skype_etl_extract skype_etl_test_support LABELS unit)
# The same suites on the scanners' baseline (SSE2) code: the build picks AVX2 at run time
# where the CPU has it (src/core/cpu.hpp), and both kernels must agree.
foreach(suite export_reader_tests extract_error_tests)
  add_test(NAME ${suite}_baseline COMMAND ${suite} --log_level=test_suite)
  set_tests_properties(${suite}_baseline PROPERTIES ENVIRONMENT SKYPE_ETL_CPU=baseline
    LABELS unit)
endforeach()
