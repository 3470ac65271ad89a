# suites of the extract component
