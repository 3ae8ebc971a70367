"""The lottery engine: levels of prune → rewind → train, the ticket and its controls, resumable."""
from lth_tf.lottery.branches import BRANCHES, BranchPlan, LevelContext, derive_seed
from lth_tf.lottery.layout import BranchFiles, ExperimentLayout
from lth_tf.lottery.runner import SUMMARY_KEYS, LotteryExperiment, format_row

__all__ = ["BRANCHES", "BranchPlan", "LevelContext", "derive_seed", "BranchFiles",
           "ExperimentLayout", "SUMMARY_KEYS", "LotteryExperiment", "format_row"]
