"""Reports: tables and figures written from result files, never typed in; cli: the ``report-*`` subcommands."""
