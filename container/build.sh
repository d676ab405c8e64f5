#!/usr/bin/env bash
# Builds the callsign container image from an already-built binary, downloading nothing: the image
# is FROM scratch with the binary, exactly the shared libraries `ldd` lists for it (and the dynamic
# loader), /etc/passwd and /etc/group with the non-root user callsign (10001), nsswitch.conf, the
# host's CA certificates, /tmp and /data.
#
#   container/build.sh [--tag NAME] BINARY          build NAME (default callsign:latest) with podman,
#                                                   buildah or docker (CONTAINER_ENGINE picks one)
#   container/build.sh --smoke-test BINARY          build into throwaway podman storage, test the
#                                                   image (see smoke_test below), remove it all
#
# BINARY is `cargo build --release -p callsign --locked`'s target/release/callsign.
set -euo pipefail
umask 022  # the image's files get these modes

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
tag=callsign:latest
smoke=false
binary=
while (($#)); do
  case "$1" in
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    --smoke-test) smoke=true; shift ;;
    -h | --help) usage ;;
    -*) echo "error: unknown option $1" >&2; usage ;;
    *) [[ -z "$binary" ]] || usage; binary=$1; shift ;;
  esac
done
[[ -n "$binary" ]] || usage
[[ -x "$binary" ]] || { echo "error: $binary is not an executable" >&2; exit 1; }
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
if $smoke && [[ "$(id -u)" != 0 ]]; then
  echo "error: --smoke-test runs as root (as CI does): it chroots into the image and runs podman" >&2
  exit 1
fi

# Every file this script makes goes here, removed at exit.
work=$(mktemp -d "${TMPDIR:-/tmp}/callsign-image.XXXXXX")
# --smoke-test keeps its images and containers in throwaway storage there: vfs works wherever root
# can write files (no overlay mounts), and no container or image of this machine's is touched.
podman_args=()
if $smoke; then
  podman_args=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs
    --cgroup-manager cgroupfs --events-backend file)
fi
server_pid=
cleanup() {
  local status=$?
  if [[ -n "$server_pid" ]]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  if ((${#podman_args[@]})); then
    # The throwaway storage: stop what still runs, unmount, drop the image, then the files.
    podman "${podman_args[@]}" rm --all --force --time 2 >/dev/null 2>&1 || true
    podman "${podman_args[@]}" image unmount --all --force >/dev/null 2>&1 || true
    podman "${podman_args[@]}" rmi --all --force >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the build context: rootfs/ and owned-by-user/data/ beside the Containerfile ---------------------------------
context=$work/context
root=$context/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$context/owned-by-user/data"
chmod 1777 "$root/tmp"
chmod 0700 "$context/owned-by-user/data"
cp "$binary" "$root/usr/local/bin/callsign"
chmod 0755 "$root/usr/local/bin/callsign"

# The libraries and the loader, at the paths the binary finds them (a static binary needs none).
if ldd_out=$(ldd "$binary" 2>&1); then
  if grep -q 'not found' <<<"$ldd_out"; then
    echo "error: $binary needs libraries this machine lacks:" >&2
    echo "$ldd_out" >&2
    exit 1
  fi
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u)
elif ! grep -q 'not a dynamic executable' <<<"$ldd_out"; then
  echo "error: ldd $binary: $ldd_out" >&2
  exit 1
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
callsign:x:10001:10001:callsign:/data:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
callsign:x:10001:
EOF
# glibc's files and dns lookups are inside libc.so.6 (since 2.34): hostnames in --database-url
# resolve through the /etc/hosts and /etc/resolv.conf the container runtime provides.
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
# Trust roots for the client commands against https endpoints (Azure Communication Services).
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  mkdir -p "$root/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
cp "$here/Containerfile" "$context/Containerfile"

version=$("$binary" --version | awk '{ print $2 }')
labels=(
  --label "org.opencontainers.image.title=callsign"
  --label "org.opencontainers.image.description=Communication Identity service (Azure Communication Services Identity protocol)"
  --label "org.opencontainers.image.version=$version"
)

# --- build -------------------------------------------------------------------------------------------
engine=${CONTAINER_ENGINE:-}
if $smoke; then
  engine=podman
  tag=localhost/callsign:smoke-test
elif [[ -z "$engine" ]]; then
  for candidate in podman buildah docker; do
    if command -v "$candidate" >/dev/null; then engine=$candidate; break; fi
  done
fi
[[ -n "$engine" ]] || { echo "error: needs podman, buildah or docker" >&2; exit 1; }
command -v "$engine" >/dev/null || { echo "error: $engine is not installed" >&2; exit 1; }

started=$SECONDS
# The docker format keeps HEALTHCHECK (the OCI image config has no field for it).
case "$engine" in
  podman) podman "${podman_args[@]}" build --quiet --format docker "${labels[@]}" -t "$tag" "$context" ;;
  buildah) buildah build --quiet --format docker "${labels[@]}" -t "$tag" "$context" ;;
  docker) docker build --quiet "${labels[@]}" -t "$tag" "$context" ;;
  *) echo "error: CONTAINER_ENGINE must be podman, buildah or docker" >&2; exit 1 ;;
esac >/dev/null
echo "built $tag with $engine in $((SECONDS - started)) s ($(du -sh "$root" | cut -f1) of files)"
$smoke || exit 0

# --- smoke test ----------------------------------------------------------------------------------------
DEV_KEY='QBuLZH+Q1IfqHJvQiK57dWHoL4aWPLNRIH2UdY2a/Cl5wKmZcBq5zTarIMGw4CdvE+qCIBVL2U1Id9TtzwsDww=='
pod() { podman "${podman_args[@]}" "$@"; }
fail() { echo "smoke test failed: $*" >&2; exit 1; }
expect() { # expect WHAT ACTUAL WANTED
  [[ "$2" == "$3" ]] || fail "$1 is $2, expected $3"
  echo "ok: $1 $2"
}

# Polls `callsign healthz URL` (this machine's binary, or the image's via the command given) for
# at most 15 s.
wait_healthy() {
  local url=$1; shift
  for _ in $(seq 60); do
    if "$@" healthz --timeout 1 "$url" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  fail "$url did not answer 200 within 15 s"
}

# The signed request a test suite makes first: create a user with the well-known dev key.
create_user() { # create_user ENDPOINT COMMAND...
  local endpoint=$1; shift
  local out
  out=$("$@" user create --output json --connection-string "endpoint=$endpoint;accesskey=$DEV_KEY") \
    || fail "user create at $endpoint"
  grep -q '"id": *"8:acs:' <<<"$out" || fail "user create at $endpoint printed $out"
  echo "ok: created a user at $endpoint"
}

smoke_test() {
  started=$SECONDS
  # 1. The image's configuration.
  expect user "$(pod image inspect --format '{{.Config.User}}' "$tag")" 10001:10001
  expect "exposed ports" "$(pod image inspect --format '{{json .Config.ExposedPorts}}' "$tag")" '{"8080/tcp":{}}'
  expect volumes "$(pod image inspect --format '{{json .Config.Volumes}}' "$tag")" '{"/data":{}}'
  expect entrypoint "$(pod image inspect --format '{{json .Config.Entrypoint}}' "$tag")" '["/usr/local/bin/callsign"]'
  expect cmd "$(pod image inspect --format '{{json .Config.Cmd}}' "$tag")" '["serve","--dev","--addr","0.0.0.0:8080"]'
  expect healthcheck "$(pod image inspect --format '{{json .HealthCheck.Test}}' "$tag")" \
    '["CMD","/usr/local/bin/callsign","healthz"]'
  echo "image size: $(pod image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.1f MB\n", $1 / 1e6 }')"

  # 2. Its filesystem alone: mount the image and run its binary from there, as the image's user,
  #    on loopback (works where containers cannot run).
  local mnt out pid endpoint=
  mnt=$(pod image mount "$tag")
  in_image() { chroot --userspec=10001:10001 "$mnt" /usr/local/bin/callsign "$@"; }
  expect "/data (owner, mode)" "$(stat -c '%u:%g %a' "$mnt/data")" "10001:10001 700"
  expect "/tmp (owner, mode)" "$(stat -c '%u:%g %a' "$mnt/tmp")" "0:0 1777"
  expect "/usr/local/bin/callsign (owner, mode)" \
    "$(stat -c '%u:%g %a' "$mnt/usr/local/bin/callsign")" "0:0 755"
  out=$(in_image --version) || fail "the image's binary does not run: $out"
  expect "the image's binary" "$out" "callsign $version"
  # chroot execs the binary: $! is the server.
  chroot --userspec=10001:10001 "$mnt" /usr/local/bin/callsign serve --dev --addr 127.0.0.1:0 \
    >"$work/serve.out" 2>"$work/serve.err" &
  pid=$!
  server_pid=$pid
  for _ in $(seq 60); do
    endpoint=$(sed -n 's/^endpoint: //p' "$work/serve.out")
    [[ -n "$endpoint" ]] && break
    kill -0 "$pid" 2>/dev/null || fail "serve exited: $(cat "$work/serve.err")"
    sleep 0.25
  done
  [[ -n "$endpoint" ]] || fail "serve printed no endpoint within 15 s: $(cat "$work/serve.err")"
  expect "the server's uid" "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" 10001
  wait_healthy "${endpoint}healthz" in_image
  echo "ok: healthz from the image's binary at ${endpoint}healthz"
  create_user "$endpoint" in_image
  kill -TERM "$pid"
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "serve did not stop on SIGTERM"; }
  wait "$pid" || fail "serve exited with $? on SIGTERM"
  server_pid=
  echo "ok: stopped on SIGTERM"
  pod image unmount "$tag" >/dev/null

  # 3. As a container: the default command, published on a loopback port, checked from outside.
  #    Limits are lowered to ones any machine grants (podman raises nofile to 1048576, which a
  #    sandbox without CAP_SYS_RESOURCE refuses); crun refuses hybrid cgroup v1/v2 hosts, where
  #    runc (if installed) is tried next.
  run_container() { # run_container [ARGS...]: prints the id; the published port goes to $port
    local id
    id=$(pod run --detach --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
      --publish 127.0.0.1::8080 "$@" 2>>"$work/run.err") || return 1
    port=$(pod port "$id" 8080/tcp | sed -n '1s/.*://p')
    [[ -n "$port" ]] || fail "no published port: $(pod port "$id")"
    echo "$id"
  }
  local cid port status runtime=default
  if ! cid=$(run_container "$tag") && command -v runc >/dev/null; then
    podman_args+=(--runtime runc)
    runtime=runc
    cid=$(run_container "$tag") || cid=
  fi
  if [[ -z "$cid" ]]; then
    echo "note: this machine cannot run containers ($(grep -v 'level=' "$work/run.err" | tail -n1));"
    echo "      tested the image's configuration and filesystem only"
  else
    echo "ok: podman run (runtime: $runtime)"
    port=$(pod port "$cid" 8080/tcp | sed -n '1s/.*://p')
    wait_healthy "http://127.0.0.1:$port/healthz" "$binary"
    echo "ok: healthz from outside at http://127.0.0.1:$port/healthz"
    create_user "http://127.0.0.1:$port/" "$binary"
    pod healthcheck run "$cid" >/dev/null 2>&1 || fail "the image's HEALTHCHECK failed"
    echo "ok: the HEALTHCHECK passes"
    pod exec "$cid" /usr/local/bin/callsign healthz http://localhost:8080/healthz >/dev/null \
      || fail "localhost does not resolve in the container"
    echo "ok: localhost resolves in the container (/etc/nsswitch.conf, glibc)"
    pid=$(pod inspect --format '{{.State.Pid}}' "$cid")
    expect "the container's uid" "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" 10001
    pod stop --time 10 "$cid" >/dev/null 2>&1
    status=$(pod inspect --format '{{.State.ExitCode}}' "$cid")
    expect "exit status after podman stop" "$status" 0
    pod rm "$cid" >/dev/null 2>&1

    # --data /data on a volume keeps state: a user created in one container is there in the next.
    local id
    pod volume create callsign-smoke >/dev/null
    cid=$(run_container -v callsign-smoke:/data "$tag" serve --dev --addr 0.0.0.0:8080 --data /data) \
      || fail "run with --data /data: $(tail -n1 "$work/run.err")"
    port=$(pod port "$cid" 8080/tcp | sed -n '1s/.*://p')
    wait_healthy "http://127.0.0.1:$port/healthz" "$binary"
    id=$("$binary" user create --output json \
      --connection-string "endpoint=http://127.0.0.1:$port/;accesskey=$DEV_KEY" |
      sed -n 's/.*"id": *"\(8:acs:[^"]*\)".*/\1/p')
    [[ -n "$id" ]] || fail "user create on the volume"
    pod rm --force --time 10 "$cid" >/dev/null 2>&1
    cid=$(run_container -v callsign-smoke:/data "$tag" serve --dev --addr 0.0.0.0:8080 --data /data) \
      || fail "run with --data /data again: $(tail -n1 "$work/run.err")"
    port=$(pod port "$cid" 8080/tcp | sed -n '1s/.*://p')
    wait_healthy "http://127.0.0.1:$port/healthz" "$binary"
    "$binary" user get "$id" --output json \
      --connection-string "endpoint=http://127.0.0.1:$port/;accesskey=$DEV_KEY" >/dev/null \
      || fail "the user created before the restart is gone"
    echo "ok: --data /data on a volume kept $id across containers"
    pod rm --force --time 10 "$cid" >/dev/null 2>&1
  fi
  echo "smoke test passed in $((SECONDS - started)) s"
}
smoke_test
