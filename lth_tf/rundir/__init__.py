"""The run directory: where every file of an experiment lives and the records' schemas.

Below everything that reads or writes experiments (lottery, tickets, report, tuning, transfer);
it needs no TensorFlow, so reading results does not start it.
"""
from lth_tf.rundir.layout import (DATA_FILE, ENGINE_FILE, MODEL_FILE, OPTIMIZER_FILE,
                                  BranchFiles, ExperimentLayout, StabilityFiles, SweepLayout)
from lth_tf.rundir.records import (MASK_DISTANCE, SUMMARY_KEYS, check_data_record,
                                   check_engine_record, check_model_record,
                                   check_optimizer_record, data_record, engine_record,
                                   optimizer_record, record_data, record_engine, record_model,
                                   record_optimizer, recorded_framework)
from lth_tf.rundir import finished, states, sweep
from lth_tf.rundir.finished import FinishedExperiment, RecordedConfig, read_config
from lth_tf.rundir.states import TrainingState

__all__ = ["DATA_FILE", "ENGINE_FILE", "MODEL_FILE", "OPTIMIZER_FILE", "BranchFiles",
           "ExperimentLayout", "FinishedExperiment", "finished", "MASK_DISTANCE", "RecordedConfig",
           "StabilityFiles", "SUMMARY_KEYS", "check_data_record", "check_engine_record",
           "check_model_record", "check_optimizer_record", "data_record", "engine_record",
           "optimizer_record", "read_config", "record_data", "record_engine", "record_model",
           "record_optimizer", "recorded_framework", "states", "sweep", "SweepLayout",
           "TrainingState"]
