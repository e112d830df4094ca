# Sourced by the benchmarks: from the package root, with a scratch directory `$work`
# removed at exit and `$cowtrace`, a release build of this tree (or $COWTRACE, to compare an older build).
cd "$(dirname "${BASH_SOURCE[1]}")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
swift build -c release --product cowtrace >/dev/null
cowtrace=${COWTRACE:-$(swift build -c release --show-bin-path)/cowtrace}
# need PACKAGE [COMMAND]: installs the Debian package if its command is missing (benchmarks
# use programs the tests do not: redis-server, perf, make).
need() {
  command -v "${2:-$1}" >/dev/null && return
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}
