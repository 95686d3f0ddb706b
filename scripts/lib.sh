# Shared by the fetch scripts (sourced, not run): running as root or through sudo, and the
# cache folder each of them fills once.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# cache_lock DIR: create the cache folder and hold its lock until the script ends. Concurrent
# test processes (cargo nextest) may run a fetch script at once: one fetches, the others wait.
cache_lock() {
  mkdir -p "$1"
  if command -v flock >/dev/null; then
    exec 9>"$1/.lock"
    flock 9
  fi
}
