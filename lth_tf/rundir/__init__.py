"""The run directory: where every file of an experiment lives and the records' schemas.

Below everything that reads or writes experiments (lottery, tickets, report, tuning, transfer);
it needs no TensorFlow, so reading results does not start it.
"""
from lth_tf.rundir.layout import (DATA_FILE, ENGINE_FILE, BranchFiles, ExperimentLayout,
                                  StabilityFiles)
from lth_tf.rundir.records import (SUMMARY_KEYS, check_data_record, check_engine_record,
                                   data_record, engine_record, record_data, record_engine)
from lth_tf.rundir import states
from lth_tf.rundir.states import TrainingState

__all__ = ["DATA_FILE", "ENGINE_FILE", "check_engine_record", "engine_record", "record_engine", "BranchFiles", "ExperimentLayout", "StabilityFiles", "SUMMARY_KEYS", "check_data_record",
           "data_record", "record_data", "states", "TrainingState"]
