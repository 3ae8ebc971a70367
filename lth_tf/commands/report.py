"""`lth report`: tables and figures of one or more finished experiments."""
from lth_tf import flags as lth_flags
from lth_tf.commands import EXPERIMENT_DIR, OUT, Command, Flag, levels_list, register
from lth_tf.errors import UserError

FLAGS = (
    EXPERIMENT_DIR,
    Flag("curve_levels", [], "levels whose learning curves are drawn", "list"),
    Flag("instability_level", None, "for a rewind sweep's directory: the level whose instability "
         "(lth stability on each k) is drawn against k (default: every measured level)",
         "integer"),
    OUT,
)


def run(args) -> int:
  from lth_tf.report import report  # pylint: disable=import-outside-toplevel
  values = lth_flags.command_values("experiment_dir", "out", "curve_levels", "instability_level")
  if args or not values["experiment_dir"] or not values["out"]:
    raise UserError("usage: lth report --experiment_dir=DIR [--experiment_dir=DIR2 ...] --out=OUT")
  levels = levels_list(values["curve_levels"], "curve_levels")
  written = report.build(values["experiment_dir"], values["out"], levels or None,
                         values["instability_level"])
  print(open(written["report.md"]).read())
  for name, path in written.items():
    print(f"{name}: {path}")
  return 0


register(Command(
    "report", "Writes a report (tables and figures) of one or more finished experiments.", run,
    usage="lth report --experiment_dir=DIR [...] --out=OUT [--curve_levels=0,7] "
    "[--instability_level=L]", flags=FLAGS))
