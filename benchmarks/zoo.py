"""The zoo of user-written networks (tests/zoo) through `lth find` (two levels with re-init),
`lth tickets save` and `lth export`, as one table: what each prunes, what it leaves dense and
why, and the export's parity with Keras.

    python benchmarks/zoo.py --out=zoo_runs

Runs from the project's root; each model trains on its small synthetic dataset
(tests/zoo/zoo_data.py) with the test suite's short schedule, so the accuracies say that the
path works, not how good a ticket is.
"""
import argparse
import collections
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _summary(model, kinds):
  from lth_tf.pruning import structure  # pylint: disable=import-outside-toplevel
  pruned, dense = structure.classify(model)
  by_kind = collections.Counter(kinds[p.name] for p in pruned)
  why = collections.Counter(d.why.split(":")[0] for d in dense)
  return (", ".join(f"{n} {k}" for k, n in by_kind.items()),
          ", ".join(f"{n} {w}" for w, n in why.items()) or "-")


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="zoo_runs")
  args = parser.parse_args()
  out = os.path.abspath(args.out)
  shutil.rmtree(out, ignore_errors=True)
  os.makedirs(out)
  for name in ("zoo_models.py", "zoo_data.py"):
    shutil.copy(os.path.join(ROOT, "tests", "zoo", name), os.path.join(out, name))
  os.chdir(out)
  sys.path.insert(0, out)
  from lth_tf import api, models, pruning, tickets  # pylint: disable=import-outside-toplevel
  from lth_tf.config import ModelConfig  # pylint: disable=import-outside-toplevel
  from lth_tf.export import ship  # pylint: disable=import-outside-toplevel
  import zoo_models  # pylint: disable=import-outside-toplevel
  print("| model | data | weights remaining (level 2) | pruned weight tensors (kind) | left dense "
        "(why) | export: agreement with Keras, SavedModel / TFLite | failures |")
  print("|---|---|---|---|---|---|---|")
  for model_name, data in zoo_models.ZOO.items():
    root = os.path.join(out, model_name)
    result = api.find(f"zoo_models:{model_name}", f"py:zoo_data:{data}", levels=2, reinit=True,
                      iterations=60, eval_every=30, batch_size=32, validation_size=40,
                      fc_rate=0.5, conv_rate=0.5, output_rate=0.25, progress=False,
                      root_dir=root, data_dir=root, log=lambda line: None)
    ticket = tickets.save(result.directory, 0, 2, os.path.join(root, "ticket"), data_dir=root)
    loaded = tickets.read(ticket)
    model = pruning.wrap_model(models.build(ModelConfig(name=loaded.config.model.name),
                                            loaded.input_shape, loaded.num_classes, 0))
    pruned, dense = _summary(model, pruning.layer_kinds(model))
    results = ship.ship(ticket, ["saved_model", "tflite"], "none", os.path.join(root, "export"),
                        root, latency_runs=5)
    agree = " / ".join(f"{100 * results['models'][m]['agreement_with_keras']:.1f}%"
                       for m in ("saved_model", "model_none.tflite"))
    print(f"| {model_name} | {data} | {100 * loaded.mask.weights_remaining():.1f}% | {pruned} | "
          f"{dense} | {agree} | {'; '.join(results['failures']) or 'none'} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
