"""The schemas of an experiment directory's records that more than one reader relies on."""

# The keys of every row of `summary.json`, and of every finished branch's `metrics.json` (which
# has more): what a resume, a report and a saved ticket read.
SUMMARY_KEYS = ("replicate", "level", "branch", "weights_remaining", "early_stop_iteration",
                "early_stop_test_accuracy", "final_test_accuracy", "min_validation_loss")
