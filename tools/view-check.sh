#!/usr/bin/env bash
# Check `raftsim view` the way a person would: run a simulation with faults, render its trace
# as a page, open the page in a headless Chromium, take screenshots, and check they show a
# diagram (not a blank or broken page). Also times the page on a large trace.
#
# usage: tools/view-check.sh [--install] [--out DIR] [--events N] [--docs]
#   --install   install Debian's chromium if it is missing (only as root; CI=1 does the same)
#   --docs      also write docs/viewer.png (seed 4, ticks 2560-2760, a Vote selected)
#   --out DIR   keep the trace, the pages and the screenshots in DIR (default: a temp dir)
#   --events N  size of the large trace for the timing check (default: 100000; 0 skips it)
# env: RAFTSIM=path  use this binary instead of building target/release/raftsim
#
# Exit: 0 checks passed (or Chromium is missing and may not be installed: skipped, said so),
#       1 a check failed, 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

install=0
docs=0
out=""
events=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=1 ;;
    --docs) docs=1 ;;
    --out) out="${2:?--out needs a directory}"; shift ;;
    --out=*) out="${1#--out=}" ;;
    --events) events="${2:?--events needs a number}"; shift ;;
    --events=*) events="${1#--events=}" ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "view-check: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

fail() { echo "view-check: FAIL: $*" >&2; exit 1; }
step() { echo "view-check: $*"; }

if [ -n "$out" ]; then
  mkdir -p "$out"
  work="$(cd "$out" && pwd)"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

# 1. The binary.
if [ -n "${RAFTSIM:-}" ]; then
  raftsim="$RAFTSIM"
else
  step "building raftsim (release)"
  cargo build --release -p raftsim --quiet
  raftsim="target/release/raftsim"
fi
"$raftsim" view --help >/dev/null 2>&1 || fail "$raftsim has no \`view\` command"

# 2. A run with faults, its trace, its page. A run that finds a bug (exit 1) still has a trace.
step "simulating seed 7 with loss, duplication, corruption, partitions, cuts, crashes, pauses"
rc=0
"$raftsim" sim --seed 7 --nodes 5 --ticks 3000 --loss 0.1 --dup 0.05 --corrupt 0.02 \
  --partitions --one-way --crashes --pauses --trace "$work/trace.jsonl" >"$work/sim.txt" || rc=$?
[ "$rc" -le 1 ] || fail "raftsim sim exited $rc: $(cat "$work/sim.txt")"
"$raftsim" view "$work/trace.jsonl" -o "$work/trace.html"
[ -s "$work/trace.html" ] || fail "no page written"

# 3. Static checks: self-contained, the whole trace embedded.
if grep -Eq 'https?://' "$work/trace.html"; then fail "the page refers to the network"; fi
if grep -Eiq '<(script|img|link|iframe)[^>]* (src|href)=' "$work/trace.html"; then
  fail "the page loads an external resource"
fi
lines=$(grep -c . "$work/trace.jsonl")
step "page: $(wc -c <"$work/trace.html") bytes for $lines trace lines"

# Malformed input is a clean error with file:line, exit 2.
printf '{"t":0,"type":"header","text":"x"}\nnot json\n' >"$work/bad.jsonl"
rc=0
"$raftsim" view "$work/bad.jsonl" -o "$work/bad.html" 2>"$work/bad.txt" || rc=$?
[ "$rc" -eq 2 ] || fail "a malformed trace exited $rc, not 2"
grep -q 'bad.jsonl:2: expected' "$work/bad.txt" || fail "no file:line in: $(cat "$work/bad.txt")"

# 4. A browser.
chromium=""
for c in chromium chromium-browser google-chrome; do
  if command -v "$c" >/dev/null 2>&1; then chromium="$c"; break; fi
done
if [ -z "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && { [ -n "${CI:-}" ] || [ "$install" = 1 ]; }; then
    step "installing chromium (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    chromium=chromium
  else
    echo "view-check: SKIP: no chromium found; the page was built and passed the static checks."
    echo "view-check: to render it too, run as root with --install (or CI=1): apt-get install chromium"
    exit 0
  fi
fi

profile="$(mktemp -d)"
shoot() { # shoot URL OUT.png [extra flags...]
  local url="$1" png="$2"
  shift 2
  rm -f "$png"
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1400,900 --hide-scrollbars \
    --enable-logging=stderr --v=0 "$@" \
    --screenshot="$png" "$url" >"$work/chromium.log" 2>&1 || true
  [ -s "$png" ] || fail "chromium wrote no screenshot of $url (see $work/chromium.log)"
  if grep -q 'Uncaught' "$work/chromium.log"; then
    fail "the page threw: $(grep -o 'Uncaught[^"]*' "$work/chromium.log" | head -1)"
  fi
}

# Decode a PNG with zlib alone and require a drawn page: enough pixels that are not the
# background, and several distinct colours.
check_png() { # check_png FILE WHAT
  python3 - "$1" "$2" <<'PY'
import struct, sys, zlib
path, what = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = ihdr
assert depth == 8 and ctype in (2, 6) and interlace == 0, f"unexpected PNG format {ihdr}"
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
rows, prev, i = [], bytearray(stride), 0
for _ in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + ((a + b) >> 1)) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
counts = {}
for line in rows[::2]:
    for x in range(0, stride, bpp * 2):
        px = line[x:x + 3]
        counts[px] = counts.get(px, 0) + 1
total = sum(counts.values())
background, bg_count = max(counts.items(), key=lambda kv: kv[1])
ink = 1 - bg_count / total
colours = sum(1 for c in counts.values() if c >= 20)
print(f"view-check: {what}: {w}x{h}, {ink:.0%} non-background pixels, {colours} distinct colours")
if ink < 0.10 or colours < 12:
    sys.exit(f"view-check: FAIL: {what} looks blank or broken")
PY
}

# 5. Screenshots: the whole run, and a zoomed window with a message selected.
step "rendering with $("$chromium" --version 2>/dev/null | head -1)"
shoot "file://$work/trace.html" "$work/whole.png"
check_png "$work/whole.png" "whole run" || exit 1
shoot "file://$work/trace.html#from=1560&to=1760" "$work/zoomed.png"
check_png "$work/zoomed.png" "ticks 1560-1760" || exit 1

# Odd but valid traces render without a script error: no header, no nodes, hostile text.
printf '%s\n' '{"t":0,"type":"mark","text":"</script><script>alert(1)</script>"}' \
  '{"t":5,"type":"violation","text":"something <b>bad</b>"}' >"$work/odd.jsonl"
"$raftsim" view "$work/odd.jsonl" -o "$work/odd.html" >/dev/null
shoot "file://$work/odd.html" "$work/odd.png"

# 6. Drive the page as a person would (wheel, drag, click an arrow, filters, buttons, range);
#    it reports what it saw on the console.
shoot "file://$work/trace.html#selftest" "$work/selftest.png"
selftest=$(grep -o 'raftsim-view-selftest[^"]*' "$work/chromium.log" | head -1 || true)
[ -n "$selftest" ] || fail "the page did not run its self-test (see $work/chromium.log)"
echo "view-check: $selftest"
case "$selftest" in *" ok "*) ;; *) fail "$selftest" ;; esac

# 7. A large trace stays responsive: the page times its own frames (#bench).
if [ "$events" -gt 0 ]; then
  ticks=$((events / 2))
  step "large trace: about $events events ($ticks ticks, 5 nodes, 8 clients)"
  # A run that finds a bug stops early; take the first seed whose trace is long enough.
  for seed in 1 2 3 4 5 6; do
    rc=0
    "$raftsim" sim --seed "$seed" --nodes 5 --clients 8 --ticks "$ticks" --loss 0.05 --dup 0.05 \
      --partitions --crashes --no-linearizability --trace "$work/large.jsonl" >/dev/null || rc=$?
    [ "$rc" -le 1 ] || fail "the large run exited $rc"
    [ "$(grep -c . "$work/large.jsonl")" -lt $((events * 8 / 10)) ] || break
  done
  "$raftsim" view "$work/large.jsonl" -o "$work/large.html"
  step "large page: $(grep -c . "$work/large.jsonl") trace lines, $(wc -c <"$work/large.html") bytes"
  shoot "file://$work/large.html#bench" "$work/large.png"
  check_png "$work/large.png" "large trace" || exit 1
  bench=$(grep -o 'raftsim-view-bench[^"]*' "$work/chromium.log" | head -1 || true)
  [ -n "$bench" ] || fail "the large page did not report its frame times (see $work/chromium.log)"
  echo "view-check: $bench"
  # Budgets with room for slow CI machines: a frame under 500 ms, loading under 10 s.
  worst=$(echo "${bench#*frames:}" | grep -o '[0-9.]* ms' | sort -n | tail -1 | cut -d' ' -f1)
  load=$(echo "$bench" | sed -n 's/.*load=\([0-9]*\)ms.*/\1/p')
  awk -v w="$worst" 'BEGIN { exit !(w < 500) }' || fail "a frame took $worst ms on the large trace"
  awk -v l="$load" 'BEGIN { exit !(l < 10000) }' || fail "loading the large page took $load ms"
fi
# 8. The documentation's screenshot.
if [ "$docs" = 1 ]; then
  rc=0
  "$raftsim" sim --seed 4 --nodes 5 --ticks 3000 --loss 0.08 --dup 0.05 --corrupt 0.02 \
    --crashes --partitions --pauses --one-way --trace "$work/docs.jsonl" >/dev/null || rc=$?
  [ "$rc" -le 1 ] || fail "the docs run exited $rc"
  "$raftsim" view "$work/docs.jsonl" -o "$work/docs.html" >/dev/null
  vote=$(python3 -c '
import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    e = json.loads(line)
    if e.get("msg") == "Vote" and 2560 <= e["t"] <= 2760:
        print(n); break' "$work/docs.jsonl")
  shoot "file://$work/docs.html#from=2560&to=2760&select=${vote:-0}" docs/viewer.png
  check_png docs/viewer.png "docs/viewer.png" || exit 1
  step "wrote docs/viewer.png ($(wc -c <docs/viewer.png) bytes)"
fi
rm -rf "$profile"
echo "view-check: PASS ($work)"
