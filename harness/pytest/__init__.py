"""The pytest plugin: options and markers (plugin), run state (state), fixtures (fixtures), the
report (report), verdicts (verdicts), the run's record directory (run_dir), signals (stopping),
usage checks before power-on (usage) and secret masking at the report boundary (masking)."""
