"""`lth tickets save|show|list|sign`: save a finished level as a ticket, describe one, list the
shipped ones, add the metadata checksum to a ticket saved before it existed."""
from lth_tf import flags as lth_flags
from lth_tf.commands import EXPERIMENT_DIR, OUT, TRUST_CODE, Command, Flag, register
from lth_tf.errors import UserError

FLAGS = (
    EXPERIMENT_DIR,
    Flag("level", None, "the level to save as a ticket", "integer"),
    Flag("replicate", 0, "the replicate (seed) to save", "integer"),
    Flag("carry_examples", 1000, "for an experiment on your own dataset (py:): the test examples "
         "the ticket carries, with 200 training examples, for `lth export` to check and "
         "calibrate on without running your dataset code (they are your data: 0 carries none, "
         "and exporting then needs --trust_code)", "integer"),
    OUT, TRUST_CODE,
)
USAGE = ("usage: lth tickets save --experiment_dir=DIR --level=L --out=DIR | "
         "lth tickets show NAME_OR_PATH | lth tickets list | lth tickets sign PATH")


def run(args) -> int:
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
  raise UserError(USAGE)


register(Command(
    "tickets", "Saves a finished level as a ticket, or shows, lists or signs saved tickets.", run,
    usage="lth tickets save|show|list|sign: save a finished level as a ticket, describe one, "
    "list the shipped ones, add the metadata checksum to a ticket saved before it existed",
    flags=FLAGS, heading="tickets save", reads=("data_dir",)))
