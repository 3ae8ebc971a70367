"""`lth stability`: linear mode connectivity, the error barrier between two copies of a branch
trained in other data orders."""
from lth_tf import flags as lth_flags
from lth_tf.commands import EXPERIMENT_DIR, EXPERIMENT_GROUPS, TRUST_CODE, Command, register
from lth_tf.errors import UserError


def run(args) -> int:
  from lth_tf import rundir, stability  # pylint: disable=import-outside-toplevel
  from lth_tf.validation import validate_stability  # pylint: disable=import-outside-toplevel
  directories = lth_flags.command_values("experiment_dir")["experiment_dir"] or []
  if args or len(directories) > 1:
    raise UserError("usage: lth stability --experiment_dir=DIR [--stability_levels=L,...] "
                    "[--stability_branches=B,...], or lth stability --flagfile=F [...]")
  settings = validate_stability(lth_flags.command_part("stability"))
  # Who trains the copies of a finished experiment: as given here, whatever trained it.
  executor = {name: lth_flags.given(name) for name in ("executor", "cpus_per_task",
                                                       "gpus_per_task")}
  executor = {name: value for name, value in executor.items() if value is not None}
  # A rewind sweep's directory (`lth find --rewind_iteration=K1,K2,...`): every k's
  # experiment, each checked before any is trained.
  if directories and rundir.sweep.is_sweep(directories[0]):
    experiments = [stability.StabilityExperiment.from_directory(
        layout.directory, settings, lth_flags.given("data_dir"), executor=executor)
                   for _, layout in rundir.sweep.read(directories[0])]
  elif directories:
    experiments = [stability.StabilityExperiment.from_directory(
        directories[0], settings, lth_flags.given("data_dir"), executor=executor)]
  else:
    experiments = [stability.StabilityExperiment.for_config(
        lth_flags.config_from_flags(), settings, lth_flags.flags_text())]
  runs = [(experiment, experiment.run()) for experiment in experiments]
  for experiment, pairs in runs:
    print()
    print(stability.table(pairs))
    print(f"\nrecord: {experiment.layout.stability_file}\nplot: {experiment.layout.stability_plot}")
  return 0


register(Command(
    "stability", "Linear mode connectivity: the error barrier between two copies trained in "
    "other data orders.", run,
    usage="lth stability --experiment_dir=DIR [--stability_levels=L,...] "
    "[--stability_branches=B,...]", groups=("stability",) + EXPERIMENT_GROUPS,
    flags=(EXPERIMENT_DIR, TRUST_CODE), heading="stability", presets=True))
