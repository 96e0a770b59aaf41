#!/bin/bash
# Keep a background training's state in the repository (machines may be replaced between sessions):
#
#   RUNS=/root/zoo-runs bash .zoo-runs/save.sh MODEL...
#
# copies $RUNS/zoo/MODEL/checkpoint.pt (the newest full training state: networks, EMA, optimisers, RNG
# states, FID history, changed settings) and log.jsonl into .zoo-runs/MODEL/, and, when an earlier step
# had the lowest FID on 500 samples in that history, its full snapshot as best.pt. Commit them; drive.sh
# resumes from them on a new machine.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd); RUNS=${RUNS:-$HOME/zoo-runs}
for MODEL in "$@"; do
  python - "$RUNS/zoo/$MODEL" "$HERE/$MODEL" <<'PY'
import shutil, sys
from pathlib import Path
import torch

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
step = lambda path: torch.load(path, weights_only=False)["step"]
if not (src / "checkpoint.pt").exists():
    sys.exit(f"{src.name}: no training state in {src} (checkpoint.pt); nothing saved")
last = torch.load(src / "checkpoint.pt", weights_only=False)
rows = [row for row in last["history"] if "fid" in row]
best = min(rows, key=lambda row: row["fid"]) if rows else None
best_file = None
if best and best["step"] != last["step"]:
    candidates = [src / f"snap-{best['step']}.pt", src / "best.pt"]  # best.pt: carried over from a former machine
    best_file = next((p for p in candidates if p.exists() and step(p) == best["step"]), None)
    if best_file is None:
        sys.exit(f"{src.name}: no snapshot of the best step {best['step']} in {src}")
dst.mkdir(parents=True, exist_ok=True)
for old in dst.glob("*.pt"):
    old.unlink()
shutil.copy(src / "checkpoint.pt", dst / "checkpoint.pt")
shutil.copy(src / "log.jsonl", dst / "log.jsonl")
if best_file:
    shutil.copy(best_file, dst / "best.pt")
print(f"{src.name}: step {last['step']} saved" + (f"; best FID-{best['fid_samples']} {best['fid']:.1f} at step "
      f"{best['step']}" + (" (best.pt)" if best_file else "") if best else ""))
PY
done
