# suites of the local database
