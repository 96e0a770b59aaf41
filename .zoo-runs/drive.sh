#!/bin/bash
# Train a zoo model in the background in CHUNK-step sittings, resumable, with an FID on 500 samples at the
# end of each sitting (the run's log.jsonl) and a full snapshot per sitting (snap-STEP.pt):
#
#   RUNS=/root/zoo-runs bash .zoo-runs/drive.sh MODEL MAX CHUNK [ganmetrics train options, e.g. --set JSON]
#
# The run folder is $RUNS/zoo/MODEL; when it has no checkpoint.pt but this folder holds the model's saved
# state (.zoo-runs/MODEL/checkpoint.pt, see save.sh), that state is copied there first, so the run goes on
# from the step it had reached on an earlier machine. Its checkpoint.pt is rewritten every CKPT_EVERY steps
# (default 100: what a session's end loses). THREADS (default 1) sets the threads; CODE (default:
# this checkout) is the code that trains, best a separate `git worktree` so edits here do not reach a
# running training.
set -u
MODEL=$1; MAX=$2; CHUNK=$3; shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-$HOME/zoo-runs}; CODE=${CODE:-$(dirname "$HERE")}; THREADS=${THREADS:-1}; CKPT_EVERY=${CKPT_EVERY:-100}
OUT=$RUNS/zoo/$MODEL
# `nice` alone does not yield to other work when the kernel groups processes by session (autogroup: setsid
# makes one), so lower this session's group too, where the kernel has it
{ echo 19 > /proc/self/autogroup; } 2>/dev/null || true
mkdir -p "$OUT"
if [ ! -e "$OUT/checkpoint.pt" ] && [ -e "$HERE/$MODEL/checkpoint.pt" ]; then
  cp "$HERE/$MODEL"/*.pt "$HERE/$MODEL/log.jsonl" "$OUT/"
fi
cd "$CODE"
step() { python -c "import torch,sys;print(torch.load(sys.argv[1],weights_only=False)['step'])" "$OUT/checkpoint.pt" 2>/dev/null || echo 0; }
while :; do
  S=$(step)
  [ "$S" -ge "$MAX" ] && break
  N=$(( (S / CHUNK + 1) * CHUNK ))
  echo "$(date -u +%FT%T) $MODEL $S -> $N"
  OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS nice -n 19 python -m ganmetrics.train "$MODEL" --out "$OUT" \
    --steps "$N" --fid-every 0 --fid-samples 500 --checkpoint-every "$CKPT_EVERY" --log-every 100 --no-progress "$@" || exit 1
  cp "$OUT/checkpoint.pt" "$OUT/snap-$N.pt.tmp" && mv "$OUT/snap-$N.pt.tmp" "$OUT/snap-$N.pt"
done
