# Sourced by the benchmarks: from the package root, with a scratch directory `$work`
# removed at exit and `$cowtrace`, a release build of this tree.
cd "$(dirname "${BASH_SOURCE[1]}")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
swift build -c release --product cowtrace >/dev/null
cowtrace=$(swift build -c release --show-bin-path)/cowtrace
