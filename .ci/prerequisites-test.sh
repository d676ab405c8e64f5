#!/usr/bin/env bash
# Tests test.sh's up-front prerequisite check (issue 13 §7): with a PATH where node, npm, c++/g++,
# runc and chromium are missing, `./test.sh --prerequisites` must exit 1 before fetching or building
# anything, with one message for each missing thing that names its package. Run by test.sh right
# after its own check passed; about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

hidden=(node npm c++ g++ runc chromium)
# The PATH, but each of its directories that holds a hidden command replaced by a directory of
# symlinks to everything else in it.
farm="$(mktemp -d -t callsign-prereq-XXXXXX)"
trap 'rm -rf "$farm"' EXIT
not_hidden=()
for name in "${hidden[@]}"; do not_hidden+=(! -name "$name"); done
IFS=: read -ra dirs <<<"$PATH"
path=""
for i in "${!dirs[@]}"; do
  dir=${dirs[$i]}
  for name in "${hidden[@]}"; do
    if [[ -e "$dir/$name" ]]; then
      mkdir "$farm/$i"
      find "$dir" -mindepth 1 -maxdepth 1 "${not_hidden[@]}" -exec ln -s -t "$farm/$i" {} +
      dir="$farm/$i"
      break
    fi
  done
  path+="${path:+:}$dir"
done

rc=0
PATH="$path" ./test.sh --prerequisites >"$farm/out" 2>"$farm/err" || rc=$?
fail() {
  echo "error: ./test.sh --prerequisites without ${hidden[*]}: $*; its stdout, then stderr:" >&2
  sed 's/^/  | /' "$farm/out" >&2
  sed 's/^/  ! /' "$farm/err" >&2
  exit 1
}
((rc == 1)) || fail "exit status $rc, not 1"
[[ ! -s "$farm/out" ]] || fail "it went on past the check (printed on stdout)"
# One message each, naming the package, and a summary counting them.
for want in 'apt-get install -y g\+\+' 'Node.js 20 or newer with npm is not installed.*nodejs npm' \
  'needs podman and runc.*podman runc' 'apt-get install -y chromium chromium-driver' \
  '4 prerequisite\(s\) of ./test.sh missing'; do
  n=$(grep -cE -- "$want" "$farm/err" || true)
  ((n == 1)) || fail "$n lines match /$want/, not 1"
done
n=$(grep -c '^error: ' "$farm/err" || true)
((n == 5)) || fail "$n error lines, not 5 (four missing things and the summary)"
echo "ok: ./test.sh --prerequisites names g++, nodejs npm, podman runc, chromium when they are missing"
