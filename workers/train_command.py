"""A stand-in for any training program: reads hyperparameters and a budget from its command
line, "trains", and prints the validation loss as its last line (``loss: 0.123``).

    python workers/train_command.py --x1 2.5 --x2 3.1 --budget 9

Replace it with your own program (any language); command_worker.py runs it for each job.
"""
import argparse
import math


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--x1", type=float, required=True)
    parser.add_argument("--x2", type=float, required=True)
    parser.add_argument("--budget", type=float, required=True, help="epochs to train")
    args = parser.parse_args(argv)
    print(f"training for {args.budget:g} epochs")  # a program may print anything before the loss
    z = min(args.budget / 27.0, 1.0)  # multi-fidelity Branin: the full budget is 27
    b = 5.1 / (4 * math.pi ** 2) - 0.01 * (1 - z)
    c = 5 / math.pi - 0.1 * (1 - z)
    t = 1 / (8 * math.pi) + 0.05 * (1 - z)
    loss = (args.x2 - b * args.x1 ** 2 + c * args.x1 - 6) ** 2 + 10 * (1 - t) * math.cos(args.x1) + 10
    print(f"loss: {loss}")


if __name__ == "__main__":
    main()
