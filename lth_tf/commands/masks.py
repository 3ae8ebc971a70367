"""`lth masks compare`: how much masks share, beside two random masks."""
from lth_tf import flags as lth_flags
from lth_tf.commands import EXPERIMENT_DIR, OUT, Command, Flag, levels_list, register
from lth_tf.errors import UserError

FLAGS = (
    EXPERIMENT_DIR,
    Flag("compare_tickets", [], "saved tickets (names or directories) whose masks are compared "
         "too", "list"),
    Flag("mask_levels", [], "the levels whose masks are compared (default: every finished "
         "level)", "list"),
    Flag("mask_branches", ["ticket", "target_ticket"], "the branches whose masks are compared (a "
         "transfer's target_ticket is the target's own)", "list"),
    OUT,
)


def run(args) -> int:
  from lth_tf.report import masks  # pylint: disable=import-outside-toplevel
  values = lth_flags.command_values("experiment_dir", "compare_tickets", "out", "mask_levels",
                                    "mask_branches")
  if args != ["compare"] or not values["out"] or not (values["experiment_dir"]
                                                      or values["compare_tickets"]):
    raise UserError("usage: lth masks compare --experiment_dir=DIR [--experiment_dir=DIR2 ...] "
                    "[--compare_tickets=T,...] [--mask_levels=0,3] --out=OUT")
  levels = levels_list(values["mask_levels"], "mask_levels") or None
  written = masks.build(values["experiment_dir"] or [], values["compare_tickets"], values["out"],
                        levels, tuple(values["mask_branches"]))
  print(open(written["masks.md"]).read())
  for name, path in written.items():
    print(f"{name}: {path}")
  return 0


register(Command(
    "masks", "How much masks share (levels, replicates, experiments, tickets), beside random "
    "masks.", run, usage="lth masks compare --experiment_dir=A [--experiment_dir=B ...] "
    "[--compare_tickets=T,...] --out=OUT", flags=FLAGS, heading="masks compare"))
