# suites of the transform component
skype_etl_add_test(markup_tests SOURCES markup_tests.cpp LIBS skype_etl_transform LABELS unit)
skype_etl_add_test(timestamps_tests SOURCES timestamps_tests.cpp LIBS skype_etl_transform
  LABELS unit)
skype_etl_add_test(transform_tests SOURCES transform_tests.cpp
  LIBS skype_etl_transform nlohmann_json::nlohmann_json LABELS unit)
