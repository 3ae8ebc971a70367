"""Tables and figures from an experiment's `summary.json`."""
