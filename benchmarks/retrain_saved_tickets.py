"""Re-trains every ticket in saved_tickets/ from its recorded config and compares its accuracy.

    .venv/bin/python benchmarks/retrain_saved_tickets.py [--data_dir=data] [--root_dir=runs/retrain]

Each ticket is trained alone (level 0 of a new experiment that starts from the ticket's mask and
rewind weights, with the recorded dataset, model, schedule and seed); the test accuracy at early
stop must be within 0.3 points of the one recorded in the ticket.
"""
import argparse
import dataclasses
import sys

from lth_tf import tickets
from lth_tf.lottery import LotteryExperiment

TOLERANCE_POINTS = 0.3


def main() -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--root_dir", default="runs/retrain")
  args = parser.parse_args()
  failures = 0
  print("| ticket | weights remaining | recorded | re-trained | difference (points) |")
  print("|---|---|---|---|---|")
  for name, ticket in tickets.shipped():
    config = ticket.config
    config = config.replace(
        pruning=dataclasses.replace(config.pruning, levels=0, reinit=False, random_prune=False,
                                    ticket_sha256=ticket.sha256),
        runtime=dataclasses.replace(config.runtime, root_dir=args.root_dir, data_dir=args.data_dir,
                                    ticket=tickets.resolve(name), progress=False,
                                    seeds=(int(ticket.provenance["replicate"]),)))
    (row,) = LotteryExperiment(config, log=lambda line: None).run()
    recorded = 100 * ticket.metrics["early_stop_test_accuracy"]
    measured = 100 * row["early_stop_test_accuracy"]
    failures += abs(measured - recorded) > TOLERANCE_POINTS
    print(f"| {name} | {100 * row['weights_remaining']:.2f}% | {recorded:.2f}% | {measured:.2f}% | "
          f"{measured - recorded:+.2f} |", flush=True)
  return 1 if failures else 0


if __name__ == "__main__":
  sys.exit(main())
