#!/usr/bin/env bash
# make_shapes writes a folder that ldm::data::load_image_folder<64, 3> reads whole, with exactly
# the generator's images (check_shapes_folder); the same seed gives the same bytes, another seed
# other images, and image k does not depend on --count. Bad flags and an unwritable --out end the
# program with exit status 1 and a message naming the flag, before anything is written.
#   make_shapes.sh <path to make_shapes> <path to check_shapes_folder> <scratch folder>
set -uo pipefail
make_shapes=$1
check=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
touch "$work/a-file"
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect_error <expected parts separated by |> <make_shapes arguments...>
expect_error() {
  local parts=$1
  shift
  local output status
  output=$(timeout 20 "$make_shapes" "$@" 2>&1 >/dev/null)
  status=$?
  if [ "$status" -ne 1 ]; then
    fail "make_shapes $*: exit status $status, expected 1"
    return
  fi
  local part
  IFS='|' read -ra wanted <<< "$parts"
  for part in "${wanted[@]}"; do
    if [[ "$output" != *"$part"* ]]; then
      fail "make_shapes $*: the message lacks '$part': $output"
      return
    fi
  done
  echo "ok: make_shapes $* -> $output"
}

expect_error "--out|a folder to write into" --count 3
expect_error "--count|[1, 1000000]|found 0" --out "$work/bad" --count 0
expect_error "--count|[1, 1000000]|found 1000001" --out "$work/bad" --count 1000001
expect_error "--count|a whole number|'many'" --out "$work/bad" --count many
expect_error "--seed|at least 0|found -1" --out "$work/bad" --seed -1
expect_error "--seed|a whole number|'1.5'" --out "$work/bad" --seed 1.5
expect_error "unknown option --size" --out "$work/bad" --size 64
expect_error "--out $work/a-file/shapes|cannot create the folder|Not a directory" \
  --out "$work/a-file/shapes" --count 2
[ -e "$work/bad" ] && fail "a rejected flag left $work/bad behind"

"$make_shapes" --out "$work/a" --count 12 --seed 7 || fail "make_shapes --count 12 --seed 7"
"$check" "$work/a" 12 7 || fail "check_shapes_folder $work/a 12 7"
"$make_shapes" --out "$work/b" --count 12 --seed 7 >/dev/null || fail "second run, seed 7"
diff -r "$work/a" "$work/b" >/dev/null || fail "two runs with seed 7 wrote different files"
"$make_shapes" --out "$work/c" --count 3 --seed 8 >/dev/null || fail "run with seed 8"
cmp -s "$work/a/shape_00000.png" "$work/c/shape_00000.png" &&
  fail "seeds 7 and 8 wrote the same first image"
"$make_shapes" --out "$work/d" --count 3 --seed 7 >/dev/null || fail "run with --count 3"
for k in 0 1 2; do
  cmp -s "$work/a/shape_0000$k.png" "$work/d/shape_0000$k.png" ||
    fail "image $k of seed 7 differs between --count 12 and --count 3"
done
[ "$(ls "$work/d" | wc -l)" -eq 3 ] || fail "--count 3 wrote $(ls "$work/d" | wc -l) files"

if [ "$failures" -ne 0 ]; then
  echo "$failures failures"
  exit 1
fi
echo "all passed"
