#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tests (Debian's postgresql package), on
# localhost:${PGPORT:-54329}, database "nas", user "nas" with password "nas"; print its URL.
# Usage: export NAS_TEST_POSTGRES="$(bash .ci/postgres.sh)"
set -euo pipefail
port="${PGPORT:-54329}"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
dir="$(mktemp -d /tmp/nas-pg.XXXXXX)"
chown postgres "$dir"
run() { su postgres -s /bin/sh -c "$*"; }
run "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
run "$bin/pg_ctl -D $dir/data -l $dir/log -o '-p $port -k $dir -c listen_addresses=127.0.0.1' -w start" >/dev/null
run "psql -h 127.0.0.1 -p $port -U postgres -qc \"CREATE USER nas PASSWORD 'nas'\""
run "psql -h 127.0.0.1 -p $port -U postgres -qc 'CREATE DATABASE nas OWNER nas'"
echo "postgresql://nas:nas@127.0.0.1:$port/nas"
