# suites of the context component
# Unit suites also run under ThreadSanitizer (label tsan): they must be TSan-clean and fast.
skype_etl_add_test(context_tests SOURCES context_tests.cpp
  LIBS skype_etl_core spdlog::spdlog LABELS "unit;tsan")
skype_etl_add_test(identity_tests SOURCES identity_tests.cpp
  LIBS skype_etl_core skype_etl_test_support LABELS unit)
skype_etl_add_test(progress_tracker_tests SOURCES progress_tracker_tests.cpp
  LIBS skype_etl_core LABELS "unit;tsan")
skype_etl_add_test(memory_monitor_tests SOURCES memory_monitor_tests.cpp
  LIBS skype_etl_core LABELS "unit;tsan")
# Needs the PostgreSQL server named by the PG* environment.
skype_etl_add_test(context_db_tests SOURCES context_db_tests.cpp
  LIBS skype_etl_core LABELS "db")
skype_etl_add_test(file_name_tests SOURCES file_name_tests.cpp
  LIBS skype_etl_core LABELS "unit")
