#!/usr/bin/env bash
# The failover test: a PostgreSQL primary and a synchronous standby managed by Patroni with etcd,
# all on loopback, two holdfast nodes connected through a multi-host URL with
# target_session_attrs=read-write; under load the primary (its Patroni and its postmaster) is
# killed with SIGKILL, Patroni promotes the standby, holdfast reconnects by itself, and the crash
# test's checker looks at everything the clients saw (crash.rs, failover_of_the_primary_loses_nothing).
#
# Needs the Debian packages postgresql, patroni and etcd-server (installed if missing, as root).
# Runs in its own directory and ports (etcd 23790/23800, PostgreSQL 54321/54322, Patroni REST
# 18008/18009), and stops everything it started on exit.
#
# Usage: scripts/failover-test.sh            (HOLDFAST_CRASH_SEED=N replays a run's choices)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'failover-test: %s\n' "$*" >&2; }

if ! command -v patroni >/dev/null || ! command -v etcd >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  say "installing postgresql, patroni and etcd-server"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql patroni etcd-server >/dev/null
fi
pg_bin="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")"

work="$(mktemp -d /tmp/holdfast-failover.XXXXXX)"
chown postgres: "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  pkill -9 -f "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

as_postgres() { runuser -u postgres -- "$@"; }

say "starting etcd"
as_postgres etcd --name failover --data-dir "$work/etcd" \
  --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster failover=http://127.0.0.1:23800 >"$work/etcd.log" 2>&1 &
pids+=($!)

# One Patroni per PostgreSQL: a short TTL so a dead primary's lock runs out in seconds, and
# synchronous replication, so an acknowledged commit is on both servers.
for n in 1 2; do
  cat >"$work/patroni$n.yml" <<YAML
scope: holdfast-failover
name: pg$n
restapi:
  listen: 127.0.0.1:1800$((7 + n))
  connect_address: 127.0.0.1:1800$((7 + n))
etcd3:
  hosts: 127.0.0.1:23790
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      parameters:
        synchronous_commit: "on"
        max_connections: 100
  initdb: [{encoding: UTF8}, {locale: C}]
  pg_hba:
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:5432$n
  connect_address: 127.0.0.1:5432$n
  data_dir: $work/pg$n
  bin_dir: $pg_bin
  pgpass: $work/pgpass$n
  authentication:
    replication: {username: replicator, password: replicator}
    superuser: {username: postgres, password: postgres}
  parameters:
    unix_socket_directories: $work
YAML
  chown postgres: "$work/patroni$n.yml"
done

say "starting the cluster"
as_postgres patroni "$work/patroni1.yml" >"$work/patroni1.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do curl -fs http://127.0.0.1:18008/primary >/dev/null && break; sleep 1; done
curl -fs http://127.0.0.1:18008/primary >/dev/null || { say "no primary"; tail -30 "$work/patroni1.log"; exit 1; }
as_postgres patroni "$work/patroni2.yml" >"$work/patroni2.log" 2>&1 &
pids+=($!)
for _ in $(seq 90); do curl -fs http://127.0.0.1:18009/sync >/dev/null && break; sleep 1; done
curl -fs http://127.0.0.1:18009/sync >/dev/null || { say "no synchronous standby"; tail -30 "$work/patroni2.log"; exit 1; }
say "primary on 54321, synchronous standby on 54322"

psql -h 127.0.0.1 -p 54321 -U postgres -qc "CREATE ROLE holdfast LOGIN PASSWORD 'holdfast'" -c "CREATE DATABASE holdfast OWNER holdfast"

# Kills whichever server is primary now: its Patroni (so nothing restarts it in place) and its
# postmaster, both with SIGKILL, as a machine failure would.
cat >"$work/kill-primary.sh" <<SH
#!/bin/sh
for n in 1 2; do
  if curl -fs http://127.0.0.1:1800\$((7 + n))/primary >/dev/null; then
    pkill -9 -f "patroni $work/patroni\$n.yml"
    kill -9 \$(head -1 "$work/pg\$n/postmaster.pid")
    echo "killed the primary pg\$n" >&2
    exit 0
  fi
done
echo "no primary to kill" >&2
exit 1
SH
chmod +x "$work/kill-primary.sh"

export HOLDFAST_FAILOVER_URL="postgres://holdfast:holdfast@127.0.0.1:54321,127.0.0.1:54322/holdfast?target_session_attrs=read-write&connect_timeout=2"
export HOLDFAST_FAILOVER_KILL="$work/kill-primary.sh"
say "load, kill the primary, check"
cargo nextest run -p holdfast --test e2e --run-ignored ignored-only --no-capture failover_of_the_primary_loses_nothing 2>&1 \
  | grep -E "failover:|crash test:|calls failed|PASS|FAIL|panicked|killed|assert" || true
test "${PIPESTATUS[0]}" -eq 0
