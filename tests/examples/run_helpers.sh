# What the trainer tests share (sourced, not run).

# The arguments of a test that takes the fashion program ($1) and a scratch folder ($2): sets
# $fashion and $work, and empties the folder.
fashion_and_scratch() {
  fashion=$1
  work=$2
  rm -rf "$work"
  mkdir -p "$work"
}

# Waits (up to a minute) until the run folder $1 has logged at least $2 lines of log.csv, the
# header included: a point somewhere in the middle of a training run to interrupt it at.
wait_for_log_lines() {
  local lines
  for _ in $(seq 600); do
    lines=0
    [ -f "$1/log.csv" ] && lines=$(wc -l < "$1/log.csv")
    [ "$lines" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "FAIL: $1/log.csv did not reach $2 lines within a minute"
  exit 1
}

# Sends signal $2 to the run $1 (a process in the background) and fails unless it exits with
# status $3; $4 is its output, shown when it does not.
stop_run() {
  kill -"$2" "$1"
  local status=0
  wait "$1" || status=$?
  if [ "$status" -ne "$3" ]; then
    echo "FAIL: after SIG$2 the run exited with $status, expected $3"
    cat "$4"
    exit 1
  fi
}

# A file as it is, or a safetensors file's tensors without its header: training_state.safetensors'
# metadata also holds the run's seconds, which differ from run to run.
tensor_bytes() {
  case "$1" in
    *.safetensors) tail -c +$((9 + $(od -An -t u8 -N8 "$1"))) "$1" ;;
    *) cat "$1" ;;
  esac
}

# Fails unless runs $1 and $2 ended with the same weights, optimiser state, scheduler and log.csv
# (but its seconds column).
same_run() {
  for file in vae/diffusion_pytorch_model.safetensors unet/diffusion_pytorch_model.safetensors \
              training_state.safetensors vae/config.json unet/config.json \
              scheduler/scheduler_config.json; do
    if ! cmp -s <(tensor_bytes "$1/checkpoint/$file") <(tensor_bytes "$2/checkpoint/$file"); then
      echo "FAIL: $file differs between $1 and $2"
      exit 1
    fi
  done
  local columns
  columns=$(head -1 "$1/log.csv" | tr ',' '\n' | grep -vn '^seconds$' | cut -d: -f1 | paste -sd,)
  if ! cmp -s <(cut -d, -f"$columns" "$1/log.csv") <(cut -d, -f"$columns" "$2/log.csv"); then
    echo "FAIL: log.csv differs between $1 and $2"
    diff <(cut -d, -f"$columns" "$1/log.csv") <(cut -d, -f"$columns" "$2/log.csv") | head
    exit 1
  fi
}
