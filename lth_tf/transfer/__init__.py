"""`lth transfer`: train a saved ticket on another dataset, optimizer or budget, beside controls."""
from lth_tf.transfer.adapters import ADAPTERS, Adapter, adapt_raw, choose
from lth_tf.transfer.experiment import (TransferExperiment, adapt_ticket, from_flags,
                                        target_config, transfer_hash)

__all__ = ["ADAPTERS", "Adapter", "adapt_raw", "choose", "TransferExperiment", "adapt_ticket",
           "from_flags", "target_config", "transfer_hash"]
