# suites of the export generator
