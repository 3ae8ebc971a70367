"""`lth export`: a ticket as a SavedModel and a sparse TFLite model, checked against Keras."""
import sys

from lth_tf import flags as lth_flags
from lth_tf.commands import OUT, TRUST_CODE, Command, Flag, register
from lth_tf.errors import UserError

FLAGS = (
    OUT,
    Flag("formats", ["saved_model", "tflite"], "saved_model and/or tflite", "list"),
    Flag("quantize", "none", "TFLite weights: none, float16 or int8"),
    Flag("tflite_encoding", "compact", "TFLite sparse weights: compact (one value and one index "
         "per kept weight, expanded once at load; smallest) or converter (the converter's 1x4 "
         "blocks where its sparse kernel reads them; faster at very low density)"),
    Flag("latency_runs", 200, "timed interpreter runs per model and thread count", "integer"),
    TRUST_CODE,
)


def run(args) -> int:
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


register(Command(
    "export", "Exports a ticket as a SavedModel and a sparse TFLite model, checked against Keras.",
    run, usage="lth export --ticket=T --formats=saved_model,tflite --quantize=none|float16|int8 "
    "--out=DIR", flags=FLAGS, reads=("ticket", "data_dir")))
