# Services the test suite needs, for .ci/run to source: start_services / stop_services.
#
# redis-server (Debian's package) on a free loopback port, with no persistence, for the Redis
# limiter's tests and the Celery farm; its URL is exported as KOPECHKA_TEST_REDIS_URL. Without it
# those tests skip saying Redis is absent, except under CI=true, where a test fails instead.

_kopechka_redis_pid=""
_kopechka_redis_dir=""

start_services() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing redis-server"
    (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) \
      || { echo "redis-server could not be installed" >&2; return 1; }
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  _kopechka_redis_dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$_kopechka_redis_dir" --daemonize no >"$_kopechka_redis_dir/log" 2>&1 &
  _kopechka_redis_pid=$!
  local tries=0
  until redis-cli -p "$port" ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$_kopechka_redis_pid" 2>/dev/null; then
      echo "redis-server did not start:" >&2; cat "$_kopechka_redis_dir/log" >&2; return 1
    fi
    sleep 0.1
  done
  export KOPECHKA_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') at $KOPECHKA_TEST_REDIS_URL"
}

stop_services() {
  if [ -n "$_kopechka_redis_pid" ]; then
    kill "$_kopechka_redis_pid" 2>/dev/null || true
    wait "$_kopechka_redis_pid" 2>/dev/null || true
    _kopechka_redis_pid=""
  fi
  if [ -n "$_kopechka_redis_dir" ]; then
    rm -rf "$_kopechka_redis_dir"
    _kopechka_redis_dir=""
  fi
}
