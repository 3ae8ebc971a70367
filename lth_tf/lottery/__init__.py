"""The lottery engine: levels of prune → rewind → train, the ticket and its controls, resumable."""
from lth_tf.lottery.branches import BRANCHES, BranchPlan, LevelContext, derive_seed
from lth_tf.lottery.runner import LotteryExperiment, format_row
from lth_tf.rundir import SUMMARY_KEYS, BranchFiles, ExperimentLayout

__all__ = ["BRANCHES", "BranchPlan", "LevelContext", "derive_seed", "BranchFiles",
           "ExperimentLayout", "SUMMARY_KEYS", "LotteryExperiment", "format_row"]
