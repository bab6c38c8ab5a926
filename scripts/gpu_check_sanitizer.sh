# gpu_check.sh's `sanitizer` step, sourced by it (its step() sets device, python, cli and dir).
# shellcheck shell=bash
# compute-sanitizer on the paged decode kernel, the one CUDA kernel of ours: memcheck (out-of-bounds and
# misaligned accesses; PyTorch's caching allocator off, so that each tensor is an allocation of its own and
# a read past one is seen), racecheck (shared-memory hazards: the warps' merge goes through shared memory)
# and synccheck (barriers), each on a small `bench decode-attention`: the 1.5B heads with sequences over
# three split-K partitions (the merge kernel too) and head size 64 in one partition, forks sharing blocks.
# Where the host has no compute-sanitizer or its runtime refuses it (KINDS.md: gVisor does), the benches
# run without it and result.json says "unavailable": no verdict, not a failure. On the CPU likewise (the
# kernel's source runs on the CPU in tests/common/cuda_sim instead).
step_sanitizer() {
  local sanitizer="" unavailable="" rc=0 run=0 entry tool dtype sizes log
  local wide="--heads 12 --kv-heads 2 --head-dim 128 --context 600 --batch 3"
  local small="--heads 14 --kv-heads 2 --head-dim 64 --context 100 --batch 5"
  # tool|dtype|sizes, most telling first (a step cut at its limit keeps the runs it finished).
  local runs=("memcheck|bfloat16|$wide" "racecheck|bfloat16|$wide" "memcheck|float32|$wide"
    "memcheck|bfloat16|$small" "synccheck|float32|$wide")
  # GPU_CHECK_SANITIZER names the tool (the script's tests give a stand-in on the CPU).
  sanitizer=${GPU_CHECK_SANITIZER:-}
  if [ -z "$sanitizer" ] && [ "$device" = cpu ]; then
    unavailable="compute-sanitizer checks CUDA kernels; on the CPU the benches ran without it"
  elif [ -z "$sanitizer" ]; then
    sanitizer=$(command -v compute-sanitizer ||
      ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer 2>/dev/null | head -1 ||
      true)
    [ -n "$sanitizer" ] || unavailable="no compute-sanitizer on this host (PATH, /usr/local/cuda*/bin)"
  fi
  : > "$dir/runs.jsonl"
  for entry in "${runs[@]}"; do
    IFS='|' read -r tool dtype sizes <<< "$entry"
    run=$((run + 1)) log="$dir/run-$run.sanitizer.log"
    local wrap=() code summary=""
    while :; do
      wrap=() code=0
      if [ -z "$unavailable" ]; then
        # Only our kernels (attend_partition, merge_partitions) are checked: LibTorch's run unchecked
        # and fast, and a hazard in one of them is not this step's to report. Failed CUDA API calls
        # are not errors here (LibTorch probes the device with calls that may fail); the bench
        # checks its own launches.
        wrap=(env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$sanitizer" --tool "$tool" --error-exitcode 3
          --kernel-name kns=partition --report-api-errors no --print-limit 20 --log-file "$log")
      fi
      # shellcheck disable=SC2086 # sizes are separate arguments
      "${wrap[@]}" "$cli" bench decode-attention --device "$device" --dtype "$dtype" $sizes --repeats 1 \
        > "$dir/run-$run.json" 2> "$dir/run-$run.err" || code=$?
      # A runtime that refuses the tool (gVisor: "Device not supported"): the check is unavailable, and
      # this bench and the rest run without it.
      if [ "${#wrap[@]}" -gt 0 ] && grep -qi 'not supported' "$log" 2>/dev/null; then
        unavailable="compute-sanitizer refused this host: $(grep -i -m1 'not supported' "$log" | sed 's/^=* *//')"
        continue
      fi
      break
    done
    [ "${#wrap[@]}" -gt 0 ] &&
      summary=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" 2>/dev/null | sed 's/^=* *//' | tr '\n' ' ' || true)
    local how="under $tool"
    [ "${#wrap[@]}" -gt 0 ] || how="not under $tool"
    echo "sanitizer: $how, $dtype, $sizes: exit $code${summary:+, $summary}" >&2
    if [ "$code" != 0 ]; then
      rc=1
      { grep -v -E '^=* *$' "$log" 2>/dev/null || tail -3 "$dir/run-$run.err"; } | head -8 >&2 || true
    fi
    "$python" -c 'import json, sys; print(json.dumps({"tool": sys.argv[1], "under_tool": sys.argv[2] == "1",
"dtype": sys.argv[3], "sizes": sys.argv[4], "exit_code": int(sys.argv[5]), "summary": sys.argv[6].strip() or None}))' \
      "$tool" "${wrap:+1}" "$dtype" "$sizes" "$code" "$summary" >> "$dir/runs.jsonl"
  done
  "$python" - "$dir" "$sanitizer" "$unavailable" <<'PY'
import json, sys
from pathlib import Path
dir, sanitizer, unavailable = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
runs = [json.loads(l) for l in (dir / "runs.jsonl").read_text().splitlines() if l.strip()]
(dir / "result.json").write_text(json.dumps({"compute_sanitizer": sanitizer or None, "runs": runs,
                                             **({"unavailable": unavailable} if unavailable else {})}))
PY
  # Unavailable: the benches alone decide (a crash without the tool is still a failure).
  return "$rc"
}
