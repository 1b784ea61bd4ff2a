#!/bin/bash
# Measured against predicted wall time of three runs (docs/performance.md, "Measured against predicted").
# Usage: benchmarks/validate_cost.sh DATA GMMS   (DATA: sample datasets folder; GMMS: folder of the neutral
# GMMs by dataset, e.g. out/gmm after make demo).  Prints each run's two predictions and its wall time.
set -e
DATA=${1:-sample_data}; GMMS=${2:-out/gmm}; PY=${PY:-.venv/bin/python}; WORK=$(mktemp -d)
run() {
  name=$1; shift
  $PY -m gmmplat train "$@" --estimate 2>&1 | grep "wall time" | sed "s/^/$name predicted: /"
  start=$(date +%s.%N)
  $PY -m gmmplat train "$@" --out "$WORK/$name" --no-progress > "$WORK/$name.log" 2>&1
  echo "$name measured: $(echo "$(date +%s.%N) - $start" | bc) s"
}
run hier2 --star "$DATA/bend/particles.star" --gmm "$GMMS/bend/gmm.npz" --preset hierarchical --epochs 5,1 --threads 2
run rigid2 --star "$DATA/hinge/particles.star" --gmm "$GMMS/hinge/gmm.npz" --preset rigid --domain moving_domain \
    --epochs 12 --threads 2
run free1 --star "$DATA/bend/particles.star" --gmm "$GMMS/bend/gmm.npz" --preset free --epochs 6,1 --threads 1
rm -rf "$WORK"
