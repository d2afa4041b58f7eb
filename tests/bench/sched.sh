#!/usr/bin/env bash
# sched.sh -- placements per second of the coordinator core (1,000 agents, 100,000 tiny tasks, store on disk).
# Peers are their published figures (not runnable here): Slurm ~500 jobs/s, Nomad C1M 3,750 placements/s.
set -eu
bin=$AICN_BUILD/bench/sched_bench
out=$("$bin" --agents 1000 --tasks 100000 --dir "$AICN_BUILD")
echo "$out"
rate=$(echo "$out" | sed -n 's/^placements: \([0-9]*\) .*/\1/p')
echo "| placements/s, 1,000 agents, 100,000 queued tasks | \`make bench\` (tests/bench/sched.sh) | $rate | Nomad C1M 3,750 (published) | $(awk -v r="$rate" 'BEGIN{printf "%.1fx", r/3750}') | $(nproc) cores |"
