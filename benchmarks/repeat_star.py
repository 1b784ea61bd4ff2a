"""A STAR of many particles from a few: its data rows repeated to ``--rows`` (the header unchanged).

Usage:  python benchmarks/repeat_star.py IN.star OUT.star --rows 1000000

For memory at the paper's particle counts (docs/performance.md, "The large case"): the images'
content does not change the memory of a run, only the number of items does.  OUT is written beside
IN so that its relative image paths still resolve.
"""
from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("star_in")
    ap.add_argument("star_out")
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    lines = open(args.star_in).read().splitlines()
    last_label = max(k for k, line in enumerate(lines) if line.startswith("_rln"))  # the particles' loop
    head, rows = lines[: last_label + 1], [line for line in lines[last_label + 1 :] if line.strip()]
    with open(args.star_out, "w") as fh:
        fh.write("\n".join(head) + "\n")
        for k in range(args.rows):
            fh.write(rows[k % len(rows)] + "\n")
    print(f"{args.star_out}: {args.rows} rows from {len(rows)}")


if __name__ == "__main__":
    main()
