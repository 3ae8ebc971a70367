"""`lth find`: lottery tickets by iterative magnitude pruning with rewinding, and the controls."""
import os

from lth_tf import flags as lth_flags
from lth_tf.commands import EXPERIMENT_GROUPS, TRUST_CODE, Command, register


def run(args) -> int:
  config, ks = lth_flags.sweep_from_flags()
  if len(ks) == 1:
    return run_experiment(config)
  return _run_sweep(config, ks)


def _run_sweep(config, ks) -> int:
  """`lth find --rewind_iteration=K1,K2,...`: a rewind sweep (`lth_tf.lottery.sweep`)."""
  from lth_tf import api  # pylint: disable=import-outside-toplevel
  result = api.run_sweep(config, ks, {k: lth_flags.flags_text(k) for k in ks})
  for k, run_k in result.runs.items():
    print(f"\nk = {k}: {run_k.directory}")
    print(run_k.table())
  print(f"\nsweep directory: {result.directory}")
  print(f"report: lth report --experiment_dir={result.directory} --out=OUT")
  return 0


def run_experiment(config) -> int:
  """Runs (or resumes) one experiment and prints its table, directory and plot."""
  from lth_tf import api  # pylint: disable=import-outside-toplevel
  result = api.run(config, flags_text=lth_flags.flags_text())
  print()
  print(result.table())
  if not result.plot:
    print("\nnot the chief worker: nothing written")
    return 0
  print(f"\nexperiment directory: {result.directory}")
  print(f"summary: {os.path.join(result.directory, 'summary.json')}")
  print(f"plot: {result.plot}")
  return 0


register(Command(
    "find", "Finds lottery tickets: iterative magnitude pruning with rewinding, and the controls.",
    run, groups=EXPERIMENT_GROUPS, flags=(TRUST_CODE,), presets=True))
