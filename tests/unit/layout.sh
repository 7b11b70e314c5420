#!/bin/sh
# layout.sh - the dependency rules issue 11 set, checked on the tree:
# no module of the PDP's core includes a command-line header (the CLI is
# an adapter over the core, never the other way), and no admin operation
# calls a CLI function. Prints each offending line; exits 1 if any.
top=${TG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top/pdp" || exit 2
cli='pdp_cli|pdp_cli_api|pdp_state_cli|pdp_policy_cli|pdp_main'
rc=0
for f in *.c *.h; do
  base=${f%.*}
  if echo "$base" | grep -Eqx "$cli"; then
    continue
  fi
  bad=$(grep -En "#include \"($cli)\.h\"|\bpdp_(cli|pc|state_cli)_[a-z_]+\(" "$f")
  if [ -n "$bad" ]; then
    echo "$bad" | sed "s|^|pdp/$f:|"
    rc=1
  fi
done
[ $rc -eq 0 ] && echo "layout: no core module depends on the CLI"
exit $rc
