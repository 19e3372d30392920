# The start netcell's shell tests share (sourced): a scratch directory, removed at exit, and
# fail, which reports a problem and counts it in $failures instead of stopping the test.
#   . tests/support/checks.sh NAME      scratch is /tmp/netcell-NAME-XXXXXX
scratch=$(mktemp -d "/tmp/netcell-$1-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
