"""The lottery engine: levels of prune → rewind → train, the ticket and its controls, resumable.

`runner` is the level loop; `replicate` a replicate's model and trainer; `branch_run` trains one
branch and writes its files (`results`); `directory` the experiment directory's lock, config and
summary; `preflight` the checks before anything is written; `tasks` the trainings as the tasks
an executor runs (`lth_tf.executors`). The branches themselves are `lth_tf.branches`.
"""
from lth_tf.branches import BRANCHES, BranchContext, BranchPlan, derive_seed
from lth_tf.lottery.results import format_row
from lth_tf.lottery.runner import LotteryExperiment
from lth_tf.rundir import SUMMARY_KEYS, BranchFiles, ExperimentLayout

__all__ = ["BRANCHES", "BranchContext", "BranchPlan", "derive_seed", "BranchFiles",
           "ExperimentLayout", "SUMMARY_KEYS", "LotteryExperiment", "format_row"]
