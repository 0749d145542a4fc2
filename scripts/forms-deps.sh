#!/usr/bin/env bash
# The real parts the holdfast-forms tests run against: MariaDB and PostgreSQL servers on loopback
# with a test user and database, and Debian's Chromium and ChromeDriver for the browser test.
# Installs what is missing from Debian's packages, initialises and starts the servers, and is
# idempotent: run it again and it only checks.
#
# Everything it says goes to standard error; standard output is only the URLs, as shell exports:
#
#   eval "$(scripts/forms-deps.sh)"      # sets HOLDFAST_TEST_MYSQL_URL, HOLDFAST_TEST_POSTGRES_URL
#
# Options: --no-browser (skip Chromium), --no-mysql, --no-postgres. Needs root (apt, services).
set -euo pipefail

want_browser=1 want_mysql=1 want_postgres=1
for arg in "$@"; do
  case "$arg" in
    --no-browser) want_browser=0 ;;
    --no-mysql) want_mysql=0 ;;
    --no-postgres) want_postgres=0 ;;
    *) echo "usage: $0 [--no-browser] [--no-mysql] [--no-postgres]" >&2; exit 2 ;;
  esac
done

say() { echo "forms-deps: $*" >&2; }

# The test credentials: loopback only, for throwaway test databases.
user=holdfast password=holdfast database=holdfast_test

need=()
if ((want_mysql)) && ! command -v mariadbd >/dev/null 2>&1 && [[ ! -x /usr/sbin/mariadbd ]]; then need+=(mariadb-server mariadb-client); fi
if ((want_postgres)) && ! compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; then need+=(postgresql); fi
if ((want_browser)) && [[ ! -x /usr/bin/chromium ]]; then need+=(chromium); fi
if ((want_browser)) && [[ ! -x /usr/bin/chromedriver ]]; then need+=(chromium-driver); fi
if ((${#need[@]})); then
  say "installing ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need[@]}" >&2
fi

wait_for() { # wait_for SECONDS COMMAND...: retry COMMAND until it succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then return 1; fi
    sleep 0.5
  done
}

if ((want_mysql)); then
  if ! mariadb-admin --protocol=socket ping >/dev/null 2>&1; then
    if [[ ! -d /var/lib/mysql/mysql ]]; then
      say "initialising MariaDB"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >&2
    fi
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    say "starting MariaDB"
    if ! service mariadb start >&2 2>&1; then
      # No init system to ask: run the server directly, in the background, on loopback.
      nohup mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 >/var/log/holdfast-mariadb.log 2>&1 &
    fi
    wait_for 60 mariadb-admin --protocol=socket ping || { say "MariaDB did not start"; exit 1; }
  fi
  mariadb --protocol=socket -uroot >&2 <<SQL
CREATE DATABASE IF NOT EXISTS $database CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON $database.* TO '$user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON $database.* TO '$user'@'localhost';
FLUSH PRIVILEGES;
SQL
  mysql_port=$(mariadb --protocol=socket -uroot -N -e 'SELECT @@port' 2>/dev/null || echo 3306)
  say "MariaDB ready on 127.0.0.1:$mysql_port"
  echo "export HOLDFAST_TEST_MYSQL_URL=mysql://$user:$password@127.0.0.1:$mysql_port/$database"
fi

if ((want_postgres)); then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v' | grep -q .; then
    say "creating PostgreSQL $version cluster"
    pg_createcluster "$version" main >&2
  fi
  cluster=$(pg_lsclusters -h | awk -v v="$version" '$1 == v {print $2; exit}')
  pg_port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $3; exit}')
  if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $4}' | grep -q online; then
    say "starting PostgreSQL $version/$cluster"
    pg_ctlcluster "$version" "$cluster" start >&2
  fi
  wait_for 60 pg_isready -q -h 127.0.0.1 -p "$pg_port" || { say "PostgreSQL did not start"; exit 1; }
  psql_admin() { runuser -u postgres -- psql -p "$pg_port" -v ON_ERROR_STOP=1 -qtA "$@"; }
  if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]]; then
    psql_admin -c "CREATE ROLE $user LOGIN PASSWORD '$password'" >&2
  fi
  if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]]; then
    psql_admin -c "CREATE DATABASE $database OWNER $user" >&2
  fi
  say "PostgreSQL ready on 127.0.0.1:$pg_port"
  echo "export HOLDFAST_TEST_POSTGRES_URL=postgres://$user:$password@127.0.0.1:$pg_port/$database"
fi
