# Suites of the extract component.
skype_etl_add_test(export_reader_tests SOURCES export_reader_tests.cpp
  LIBS skype_etl_extract skype_etl_test_support nlohmann_json::nlohmann_json LABELS unit)
skype_etl_add_test(extract_error_tests SOURCES extract_error_tests.cpp
  LIBS skype_etl_extract skype_etl_test_support LABELS unit)
skype_etl_add_test(media_writer_tests SOURCES media_writer_tests.cpp
  LIBS skype_etl_extract skype_etl_test_support LABELS unit)
skype_etl_add_test(input_file_tests SOURCES input_file_tests.cpp
  LIBS skype_etl_extract skype_etl_test_support LABELS unit)
