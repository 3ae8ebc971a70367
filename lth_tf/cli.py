"""The `lth` command: `lth <subcommand> [--flagfile=F] [--flag=value ...]`.

Subcommands are registered functions; user errors become one line on stderr and exit code 2.
"""
import dataclasses
import os
import signal
import sys
from typing import Callable, List

from absl import app
from absl import logging as absl_logging

from lth_tf import branches
from lth_tf import flags as lth_flags
from lth_tf.errors import Interrupted, TrainingDiverged, UserError
from lth_tf.registry import Registry

USAGE_EXIT = 2
COMMANDS: Registry[Callable[[List[str]], int]] = Registry("command")


def _fail(message: str) -> None:
  print(f"lth: error: {message}", file=sys.stderr)
  sys.exit(USAGE_EXIT)


@COMMANDS.register("train")
def _train(args: List[str]) -> int:
  """Trains one network (dense, or a saved ticket with --ticket) and prints its metrics."""
  config = lth_flags.config_from_flags()
  config = config.replace(pruning=dataclasses.replace(config.pruning, levels=0))
  return _run_experiment(branches.ticket_only(config))


@COMMANDS.register("find")
def _find(args: List[str]) -> int:
  """Finds lottery tickets: iterative magnitude pruning with rewinding, and the controls."""
  config, ks = lth_flags.sweep_from_flags()
  if len(ks) == 1:
    return _run_experiment(config)
  return _run_sweep(config, ks)


def _run_sweep(config, ks) -> int:
  """`lth find --rewind_iteration=K1,K2,...`: a rewind sweep (`lth_tf.lottery.sweep`)."""
  from lth_tf import api  # pylint: disable=import-outside-toplevel
  result = api.run_sweep(config, ks, {k: lth_flags.flags_text(k) for k in ks})
  for k, run in result.runs.items():
    print(f"\nk = {k}: {run.directory}")
    print(run.table())
  print(f"\nsweep directory: {result.directory}")
  print(f"report: lth report --experiment_dir={result.directory} --out=OUT")
  return 0


def _run_experiment(config) -> int:
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


@COMMANDS.register("tune")
def _tune(args: List[str]) -> int:
  """Searches the rewind point, learning rate and pruning rate for the best ticket (keras-tuner).

  `lth tune --flagfile=F --tuner=random|bayesian|hyperband --max_trials=N --target_weights_remaining=W`.
  """
  from lth_tf import tuning  # pylint: disable=import-outside-toplevel
  if args:
    raise UserError("usage: lth tune --flagfile=FILE [--tuner=random|bayesian|hyperband] "
                    "[--max_trials=N] [--target_weights_remaining=W] [--tune_dir=DIR]")
  results = tuning.run(lth_flags.config_from_flags(), lth_flags.tuning_config_from_flags(),
                       lth_flags.config_to_flags)
  if results is None:
    print("\nnot the chief tuner: results are written by the chief")
    return 0
  print()
  print(tuning.table(results["rows"]))
  print()
  for name, path in results["written"].items():
    print(f"{name}: {path}")
  return 0


@COMMANDS.register("transfer")
def _transfer(args: List[str]) -> int:
  """Trains a ticket on another dataset, class subset, optimizer or budget beside its controls.

  `lth transfer --ticket=T --target_dataset=D`.
  """
  from lth_tf import transfer  # pylint: disable=import-outside-toplevel
  from lth_tf.report import transfer as transfer_report  # pylint: disable=import-outside-toplevel
  if args:
    raise UserError("usage: lth transfer --ticket=NAME_OR_PATH --target_dataset=D "
                    "[--target_classes=...] [--target_optimizer=adam|sgd] "
                    "[--train_examples_per_class=N] [--target_ticket=T] --root_dir=DIR")
  experiment = transfer.from_flags(lth_flags.config_from_flags(),
                                   lth_flags.transfer_config_from_flags(),
                                   lth_flags.explicit_fields(), flags_text=lth_flags.flags_text())
  experiment.run()
  directory = experiment.layout.directory
  print()
  print(transfer_report.table([transfer_report.TransferRun.read(directory)]))
  plot = transfer_report.figure([transfer_report.TransferRun.read(directory)],
                                os.path.join(directory, "transfer.png"))
  print(f"\nexperiment directory: {directory}")
  print(f"plot: {plot}")
  return 0


@COMMANDS.register("data")
def _data(args: List[str]) -> int:
  """Installs datasets from offline sources into the data directory (`lth data install`)."""
  if args != ["install"]:
    raise UserError("usage: lth data install --data_dir=DIR [--fashion_mnist_source=DIR] "
                    "[--cifar10_source=TGZ_OR_DIR] [--tfds_datasets=NAME,...]")
  from lth_tf.data import offline, tfds_source  # pylint: disable=import-outside-toplevel
  values = lth_flags.command_values("fashion_mnist_source", "cifar10_source", "data_dir",
                                    "tfds_datasets")
  if not (values["fashion_mnist_source"] or values["cifar10_source"] or values["tfds_datasets"]):
    raise UserError("lth data install: give --fashion_mnist_source, --cifar10_source or "
                    "--tfds_datasets")
  written = offline.install(
      [n for n in ("fashion_mnist", "cifar10") if values[f"{n}_source"]], values["data_dir"],
      fashion_mnist_dir=values["fashion_mnist_source"], cifar10_source=values["cifar10_source"])
  written += [tfds_source.prepare(name, values["data_dir"]) for name in values["tfds_datasets"]]
  for path in written:
    print(path)
  return 0


@COMMANDS.register("tickets")
def _tickets(args: List[str]) -> int:
  """Saves a finished level as a ticket, or shows, lists or signs saved tickets.

  `lth tickets save|show|list|sign`: save a finished level as a ticket, describe one, list the
  shipped ones, add the metadata checksum to a ticket saved before it existed.
  """
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  action = args[0] if args else ""
  if action == "save" and len(args) == 1:
    values = lth_flags.command_values("experiment_dir", "level", "replicate", "out")
    values["experiment_dir"] = (values["experiment_dir"] or [None])[0]
    if None in values.values():
      raise UserError("usage: lth tickets save --experiment_dir=DIR --level=L [--replicate=S] --out=DIR")
    extra = lth_flags.command_values("data_dir", "carry_examples")
    path = tickets.save(values["experiment_dir"], values["replicate"], values["level"], values["out"],
                        extra["data_dir"], extra["carry_examples"])
    print(tickets.describe(tickets.read(path, consent=False), path))
    return 0
  if action == "show" and len(args) == 2:
    print(tickets.describe(tickets.read(tickets.resolve(args[1]), consent=False), args[1]))
    return 0
  if action == "list" and len(args) == 1:
    for name, ticket in tickets.shipped():
      print(f"{name:<40} {tickets.one_line(ticket)}")
    return 0
  if action == "sign" and len(args) == 2:
    print(f"{args[1]}: metadata_sha256 {tickets.sign(tickets.resolve(args[1]))}")
    return 0
  raise UserError("usage: lth tickets save --experiment_dir=DIR --level=L --out=DIR | "
                  "lth tickets show NAME_OR_PATH | lth tickets list | lth tickets sign PATH")


@COMMANDS.register("export")
def _export(args: List[str]) -> int:
  """Exports a ticket as a SavedModel and a sparse TFLite model, checked against Keras.

  `lth export --ticket=T --formats=saved_model,tflite --quantize=none|float16|int8 --out=DIR`.
  """
  from lth_tf.export import ship  # pylint: disable=import-outside-toplevel
  values = lth_flags.command_values("ticket", "formats", "quantize", "out", "data_dir",
                                    "latency_runs", "tflite_encoding")
  if args or not values["ticket"] or not values["out"]:
    raise UserError("usage: lth export --ticket=NAME_OR_PATH --out=DIR [--formats=saved_model,tflite] "
                    "[--quantize=none|float16|int8] [--tflite_encoding=compact|converter]")
  if values["latency_runs"] < 1:
    raise UserError(f"latency_runs must be >= 1; got {values['latency_runs']}")
  results = ship.ship(values["ticket"], values["formats"], values["quantize"], values["out"],
                      values["data_dir"], values["latency_runs"], values["tflite_encoding"])
  print(ship.table(results))
  print(f"\nwritten to {values['out']}")
  if results["failures"]:
    print("lth: export parity failed: " + "; ".join(results["failures"]), file=sys.stderr)
    return 1
  return 0


@COMMANDS.register("report")
def _report(args: List[str]) -> int:
  """Writes a report (tables and figures) of one or more finished experiments.

  `lth report --experiment_dir=DIR [...] --out=OUT [--curve_levels=0,7] [--instability_level=L]`.
  """
  from lth_tf.report import report  # pylint: disable=import-outside-toplevel
  values = lth_flags.command_values("experiment_dir", "out", "curve_levels", "instability_level")
  if args or not values["experiment_dir"] or not values["out"]:
    raise UserError("usage: lth report --experiment_dir=DIR [--experiment_dir=DIR2 ...] --out=OUT")
  try:
    levels = [int(v) for v in values["curve_levels"]]
  except ValueError:
    raise UserError("--curve_levels takes a comma-separated list of integers") from None
  written = report.build(values["experiment_dir"], values["out"], levels or None,
                         values["instability_level"])
  print(open(written["report.md"]).read())
  for name, path in written.items():
    print(f"{name}: {path}")
  return 0


@COMMANDS.register("masks")
def _masks(args: List[str]) -> int:
  """How much masks share (levels, replicates, experiments, tickets), beside random masks.

  `lth masks compare --experiment_dir=A [--experiment_dir=B ...] [--compare_tickets=T,...] --out=OUT`.
  """
  from lth_tf.report import masks  # pylint: disable=import-outside-toplevel
  values = lth_flags.command_values("experiment_dir", "compare_tickets", "out", "mask_levels",
                                    "mask_branches")
  if args != ["compare"] or not values["out"] or not (values["experiment_dir"]
                                                      or values["compare_tickets"]):
    raise UserError("usage: lth masks compare --experiment_dir=DIR [--experiment_dir=DIR2 ...] "
                    "[--compare_tickets=T,...] [--mask_levels=0,3] --out=OUT")
  try:
    levels = [int(v) for v in values["mask_levels"]] or None
  except ValueError:
    raise UserError("--mask_levels takes a comma-separated list of integers") from None
  written = masks.build(values["experiment_dir"] or [], values["compare_tickets"], values["out"],
                        levels, tuple(values["mask_branches"]))
  print(open(written["masks.md"]).read())
  for name, path in written.items():
    print(f"{name}: {path}")

@COMMANDS.register("stability")
def _stability(args: List[str]) -> int:
  """Linear mode connectivity: the error barrier between two copies trained in other data orders.

  `lth stability --experiment_dir=DIR [--stability_levels=L,...] [--stability_branches=B,...]`.
  """
  from lth_tf import rundir, stability  # pylint: disable=import-outside-toplevel
  directories = lth_flags.command_values("experiment_dir")["experiment_dir"] or []
  if args or len(directories) > 1:
    raise UserError("usage: lth stability --experiment_dir=DIR [--stability_levels=L,...] "
                    "[--stability_branches=B,...], or lth stability --flagfile=F [...]")
  settings = lth_flags.stability_config_from_flags()
  # A rewind sweep's directory (`lth find --rewind_iteration=K1,K2,...`): every k's
  # experiment, each checked before any is trained.
  if directories and rundir.sweep.is_sweep(directories[0]):
    experiments = [stability.StabilityExperiment.from_directory(
        layout.directory, settings, lth_flags.given("data_dir"))
                   for _, layout in rundir.sweep.read(directories[0])]
  elif directories:
    experiments = [stability.StabilityExperiment.from_directory(
        directories[0], settings, lth_flags.given("data_dir"))]
  else:
    experiments = [stability.StabilityExperiment.for_config(
        lth_flags.config_from_flags(), settings, lth_flags.flags_text())]
  runs = [(experiment, experiment.run()) for experiment in experiments]
  for experiment, pairs in runs:
    print()
    print(stability.table(pairs))
    print(f"\nrecord: {experiment.layout.stability_file}\nplot: {experiment.layout.stability_plot}")
  return 0


# Per command: the `[tag]`s of the flags it reads, in the order its help shows them, and the
# flags of other groups it reads too.
COMMAND_FLAGS = {
    "train": (("dataset", "model", "training", "runtime"), ("rewind_iteration",)),
    "find": (("dataset", "model", "training", "pruning", "runtime"), ()),
    "transfer": (("transfer", "dataset", "training", "pruning", "runtime"), ()),
    "tune": (("tune", "dataset", "model", "training", "pruning", "runtime"), ()),
    "tickets": (("tickets save",), ("data_dir",)),
    "export": (("export",), ("ticket", "data_dir")),
    "report": (("report",), ("out",)),
    "masks": (("masks compare",), ()),

    "stability": (("stability", "dataset", "model", "training", "pruning", "runtime"),
                  ("experiment_dir",)),
    "data": (("data install",), ("data_dir",)),
}
PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flags")


def _summary(name: str) -> str:
  return (COMMANDS.get(name).__doc__ or "").strip().splitlines()[0]


def _usage(name: str) -> str:
  """The usage a command's docstring gives after its summary (a "`lth ...`" paragraph)."""
  rest = " ".join((COMMANDS.get(name).__doc__ or "").strip().splitlines()[1:]).strip()
  return rest.strip("`.") if rest.startswith("`lth") else ""


def overview() -> str:
  """`lth --help`: the commands, one line each."""
  lines = ["usage: lth <command> [--flagfile=FILE] [--flag=value ...]", "", "commands:"]
  lines += [f"  {name:<10} {_summary(name)}" for name in COMMANDS.names()]
  lines += ["", "lth <command> --help lists a command's flags; --helpfull lists every flag."]
  return "\n".join(lines)


def command_help(name: str) -> str:
  """`lth <command> --help`: the command's own flags, grouped, with the preset flagfiles."""
  tags, extra = COMMAND_FLAGS[name]
  presets = []
  if "training" in tags and os.path.isdir(PRESETS_DIR):
    presets = [f"flags/{f}" for f in sorted(os.listdir(PRESETS_DIR)) if f.endswith(".flags")]
  return lth_flags.command_help(name, _summary(name), tags, extra, presets, _usage(name))


def _help_requested(argv: List[str]) -> None:
  """Prints the help asked for and exits 0; returns when none is asked for."""
  words = argv[1:]
  if "--helpfull" in words:
    _print_and_exit(lth_flags.full_help())
  if any(word in lth_flags.HELP_TOKENS for word in words) or words[:1] == ["help"]:
    command = words[1] if words[:1] == ["help"] and len(words) > 1 else (words[0] if words else "")
    _print_and_exit(command_help(command) if command in COMMAND_FLAGS else overview())


def _print_and_exit(text: str) -> None:
  """Prints help and exits 0, also when the reader stops early (`lth find --help | head`)."""
  try:
    print(text, flush=True)
  except BrokenPipeError:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
  sys.exit(0)


def _parse(argv: List[str]) -> List[str]:
  _help_requested(argv)
  try:
    return lth_flags.parse(argv)
  except UserError as error:
    _fail(str(error))
  return []


def _refuse_foreign_flags(name: str) -> None:
  """A flag of another command (`lth find --formats=onnx`) is an error, not silently ignored."""
  if name not in COMMAND_FLAGS:
    return
  given = lth_flags.foreign(*COMMAND_FLAGS[name])
  if given:
    flag, owners = given[0]
    others = ", ".join(f"--{other}" for other, _ in given[1:])
    raise UserError(f"--{flag} is a flag of {' and '.join(owners)}, which lth {name} does not "
                    f"read" + (f" (nor {others})" if others else "") +
                    f"; see lth {name} --help")


def _terminate(signum, frame) -> None:
  """SIGTERM stops a command as Ctrl-C does: files stay sound, the lock is released."""
  raise Interrupted(signum)


def _main(argv: List[str]) -> None:
  absl_logging.set_verbosity(absl_logging.WARNING)
  signal.signal(signal.SIGTERM, _terminate)
  if len(argv) < 2:
    print(overview(), file=sys.stderr)
    sys.exit(USAGE_EXIT)
  try:
    command = COMMANDS.get(argv[1])
    _refuse_foreign_flags(argv[1])
    lth_flags.trust_given_code()
    sys.exit(command(argv[2:]))
  except UserError as error:
    _fail(str(error))
  except TrainingDiverged as error:
    print(f"lth: training diverged: {error}", file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt as interrupt:
    signum = getattr(interrupt, "signum", signal.SIGINT)
    where = getattr(interrupt, "where", "")
    print(f"lth: {'terminated' if signum == signal.SIGTERM else 'interrupted'}" +
          (f" {where}; rerun the same command to resume" if where else ""),
          file=sys.stderr)
    sys.exit(128 + signum)
  except OSError as error:  # the environment, not the code: a full disk, a missing permission
    _fail(f"{error.strerror.lower() if error.strerror else error}"
          f"{f': {error.filename}' if error.filename else ''}")


def main() -> None:
  """Console-script entry point."""
  app.run(_main, flags_parser=_parse)


if __name__ == "__main__":
  main()
