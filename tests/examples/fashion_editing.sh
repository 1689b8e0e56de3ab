#!/usr/bin/env bash
# `fashion img2img`, `inpaint` and `interpolate` on the shipped model (a few sampling steps):
# each writes a PNG grid of the size its layout gives, with DDIM and DDPM; and every bad flag,
# input or mask ends the program with exit status 1 and a message naming it, before the model
# is loaded (the error cases pass a model folder that does not exist, so a check that came too
# late would name the folder instead).
#   fashion_editing.sh <path to the fashion program> <scratch folder>
set -uo pipefail
fashion=$1
work=$2
model="$(cd "$(dirname "$0")/../.." && pwd)/models/fashion-tiny"
rm -rf "$work"
mkdir -p "$work"
touch "$work/a-file"
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# A grey PGM image (which stb reads like the other formats): pgm FILE WIDTH HEIGHT WHITE_ROWS
# (the top WHITE_ROWS rows white, the rest black).
pgm() {
  { printf 'P5\n%d %d\n255\n' "$2" "$3"
    head -c $(($2 * $4)) /dev/zero | tr '\0' '\377'
    head -c $(($2 * ($3 - $4))) /dev/zero; } > "$1"
}
pgm "$work/top-white-40.pgm" 40 40 20
pgm "$work/mask-40.pgm" 40 40 20
pgm "$work/mask-32.pgm" 32 32 16
pgm "$work/black-40.pgm" 40 40 0

# png_size FILE: "WIDTHxHEIGHT" from the PNG header.
png_size() {
  local b
  read -ra b <<< "$(od -An -tu1 -j16 -N8 "$1")"
  echo "$(((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]))x$(((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]))"
}
# The size of a grid of COLUMNS x ROWS 32x32 cells (a 2-pixel gap, zoom 2).
grid_size() { echo "$((($1 * 34 + 2) * 2))x$((($2 * 34 + 2) * 2))"; }

# expect_grid <columns> <rows> <out file> <fashion arguments...>
expect_grid() {
  local columns=$1 rows=$2 out=$3
  shift 3
  local output
  if ! output=$(timeout 120 "$fashion" "$@" --out "$out" 2>&1); then
    fail "fashion $* --out $out: $output"
    return
  fi
  if [ ! -f "$out" ]; then
    fail "fashion $*: no $out"
    return
  fi
  local size expected
  size=$(png_size "$out")
  expected=$(grid_size "$columns" "$rows")
  if [ "$size" != "$expected" ]; then
    fail "fashion $*: $out is $size, expected $expected"
    return
  fi
  echo "ok: fashion $* -> $size"
}

# expect_error <expected parts separated by |> <fashion arguments...>
expect_error() {
  local parts=$1
  shift
  local output status
  output=$(timeout 20 "$fashion" "$@" 2>&1 >/dev/null)
  status=$?
  if [ "$status" -ne 1 ]; then
    fail "fashion $*: exit status $status, expected 1 (124: still running after 20 s)"
    return
  fi
  local part
  IFS='|' read -ra wanted <<< "$parts"
  for part in "${wanted[@]}"; do
    if [[ "$output" != *"$part"* ]]; then
      fail "fashion $*: the message lacks '$part': $output"
      return
    fi
  done
  echo "ok: fashion $* -> $output"
}

have_data=0
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] && have_data=1

# --- grids from the shipped model ----------------------------------------------------------
steps=(--model "$model" --sample-steps 4)
# A PNG input of another size and shape (a sample grid: cropped to its centre and resized).
"$fashion" sample "${steps[@]}" --count 1 --out "$work/grid.png" > /dev/null || fail "fashion sample"
for sampler in ddim ddpm; do
  expect_grid 4 2 "$work/img2img-$sampler.png" img2img "${steps[@]}" --sampler "$sampler" \
    --image "$work/grid.png" --image "$work/top-white-40.pgm" --strength 0.5 --count 3
  expect_grid 5 1 "$work/inpaint-$sampler.png" inpaint "${steps[@]}" --sampler "$sampler" \
    --image "$work/top-white-40.pgm" --mask "$work/mask-40.pgm" --count 3
  expect_grid 6 1 "$work/interpolate-seeds-$sampler.png" interpolate "${steps[@]}" \
    --sampler "$sampler" --seeds 1,2 --frames 6
  expect_grid 6 1 "$work/interpolate-images-$sampler.png" interpolate "${steps[@]}" \
    --sampler "$sampler" --images "$work/grid.png,$work/black-40.pgm" --frames 4 --strength 0.75
done
# More outputs and frames than one batch of 16.
expect_grid 18 1 "$work/img2img-many.png" img2img "${steps[@]}" --image "$work/grid.png" \
  --strength 0.5 --count 17
expect_grid 8 3 "$work/interpolate-many.png" interpolate "${steps[@]}" --seeds 3,4 --frames 20
expect_grid 4 1 "$work/inpaint-box.png" inpaint "${steps[@]}" --image "$work/grid.png" \
  --mask-box 8,8,24,24 --strength 0.8 --count 2
if [ "$have_data" -eq 1 ]; then
  expect_grid 3 2 "$work/img2img-test.png" img2img "${steps[@]}" --test-image 0,1 --count 2
  expect_grid 4 1 "$work/inpaint-test.png" inpaint "${steps[@]}" --test-image 5 \
    --mask-region left --count 2
  expect_grid 4 1 "$work/inpaint-test-mask.png" inpaint "${steps[@]}" --test-image 5 \
    --mask "$work/mask-32.pgm" --count 2
  expect_grid 5 1 "$work/interpolate-test.png" interpolate "${steps[@]}" --test-images 0,1 \
    --frames 3
else
  echo "skipped: the --test-image cases (no Fashion-MNIST in /usr/share/datasets/fashion-mnist)"
fi

# --- errors before any work ----------------------------------------------------------------
none=(--model "$work/no-such-model")
in=(--image "$work/grid.png")
expect_error "--strength|[0, 1]|found 1.5" img2img "${none[@]}" "${in[@]}" --strength 1.5
expect_error "--strength|at least 1 / --sample-steps (10 steps)|found 0.05" \
  img2img "${none[@]}" "${in[@]}" --strength 0.05 --sample-steps 10
expect_error "--strength|found -0.5" inpaint "${none[@]}" "${in[@]}" --mask-region left --strength -0.5
expect_error "--strength|at least 1 / --sample-steps" \
  interpolate "${none[@]}" --images "$work/grid.png,$work/grid.png" --strength 0
expect_error "--strength|[0, 1]|found 2" interpolate "${none[@]}" --seeds 1,2 --strength 2
expect_error "--sampler|one of ddim|'foo'" img2img "${none[@]}" "${in[@]}" --sampler foo
expect_error "--sampler|'euler-x'" inpaint "${none[@]}" "${in[@]}" --mask-region left --sampler euler-x
expect_error "--sampler|'foo'" interpolate "${none[@]}" --seeds 1,2 --sampler foo
expect_error "--sample-steps|found 0" img2img "${none[@]}" "${in[@]}" --sample-steps 0
expect_error "--sample-steps|found 0" interpolate "${none[@]}" --seeds 1,2 --sample-steps 0
expect_error "--eta|--sampler ddpm" img2img "${none[@]}" "${in[@]}" --sampler ddpm --eta 0.5
expect_error "--count|[1, 64]|found 0" img2img "${none[@]}" "${in[@]}" --count 0
expect_error "--count|[1, 64]|found 65" inpaint "${none[@]}" "${in[@]}" --mask-region left --count 65
expect_error "--seed|at least 0|found -1" img2img "${none[@]}" "${in[@]}" --seed -1
expect_error "input images|at least one --image FILE or --test-image K|none" img2img "${none[@]}"
expect_error "--image|$work/no-such.png" img2img "${none[@]}" --image "$work/no-such.png"
expect_error "--image|$work/a-file|cannot decode" img2img "${none[@]}" --image "$work/a-file"
expect_error "--test-image|whole numbers|'x'" img2img "${none[@]}" --test-image x
expect_error "--test-image|at least 0|found -1" img2img "${none[@]}" --test-image -1
expect_error "--out $work/a-file|cannot create the folder|Not a directory" \
  img2img "${none[@]}" "${in[@]}" --out "$work/a-file/x.png"
expect_error "--out $work|a PNG file name|a folder" img2img "${none[@]}" "${in[@]}" --out "$work"
expect_error "the mask|one of --mask FILE, --mask-region R or --mask-box|none" \
  inpaint "${none[@]}" "${in[@]}"
expect_error "the mask|found 2 of them" \
  inpaint "${none[@]}" "${in[@]}" --mask-region left --mask-box 0,0,8,8
expect_error "--mask-region|left, right, top, bottom or centre|'diagonal'" \
  inpaint "${none[@]}" "${in[@]}" --mask-region diagonal
expect_error "--mask-box|0 <= x0 < x1 <= 32|'0,0,40,10'" \
  inpaint "${none[@]}" "${in[@]}" --mask-box 0,0,40,10
expect_error "--mask-box|four numbers|'1,2,3'" inpaint "${none[@]}" "${in[@]}" --mask-box 1,2,3
expect_error "the mask|nothing would be repainted" \
  inpaint "${none[@]}" "${in[@]}" --mask-box 1,1,4,4
expect_error "--mask $work/mask-40.pgm|the size of $work/grid.png, 548x140|found 40x40" \
  inpaint "${none[@]}" "${in[@]}" --mask "$work/mask-40.pgm"
expect_error "--mask|$work/no-such-mask.png" \
  inpaint "${none[@]}" "${in[@]}" --mask "$work/no-such-mask.png"
expect_error "the mask|nothing would be repainted" \
  inpaint "${none[@]}" --image "$work/black-40.pgm" --mask "$work/black-40.pgm"
expect_error "what to interpolate between|none" interpolate "${none[@]}"
expect_error "what to interpolate between|found 2 of them" \
  interpolate "${none[@]}" --seeds 1,2 --test-images 0,1
expect_error "--seeds|two seeds A,B|'1'" interpolate "${none[@]}" --seeds 1
expect_error "--seed 5|--images|seeds A and B" interpolate "${none[@]}" --seeds 1,2 --seed 5
expect_error "--strength 0.3|--images|pure noise" interpolate "${none[@]}" --seeds 1,2 --strength 0.3
expect_error "--seeds|at least 0|found -2" interpolate "${none[@]}" --seeds 1,-2
expect_error "--images|two names separated by a comma|'a.png'" interpolate "${none[@]}" --images a.png
expect_error "--test-images|two indices K1,K2|'1,2,3'" interpolate "${none[@]}" --test-images 1,2,3
expect_error "--frames|[2, 64]|found 1" interpolate "${none[@]}" --seeds 1,2 --frames 1
expect_error "--frames|[2, 64]|found 65" interpolate "${none[@]}" --seeds 1,2 --frames 65
if [ "$have_data" -eq 1 ]; then
  expect_error "--test-image|[0, 9999]|found 10000" img2img "${none[@]}" --test-image 10000
fi
# Flags that are all valid get as far as the model, which is then what the message names.
expect_error "$work/no-such-model|no checkpoint folder" img2img "${none[@]}" "${in[@]}"
expect_error "$work/no-such-model|no checkpoint folder" \
  inpaint "${none[@]}" "${in[@]}" --mask-region centre
expect_error "$work/no-such-model|no checkpoint folder" interpolate "${none[@]}" --seeds 1,2

if [ "$failures" -ne 0 ]; then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all editing checks passed"
