# suites of the local database
skype_etl_add_test(conninfo_tests SOURCES conninfo_tests.cpp LIBS skype_etl_core LABELS unit)
# local_db_tests runs initdb and pg_ctl itself (no PG* server needed), but needs the
# PostgreSQL server programs like the other db suites.
skype_etl_add_test(local_db_tests SOURCES local_db_tests.cpp LIBS skype_etl_core LABELS db)
