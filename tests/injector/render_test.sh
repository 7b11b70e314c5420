#!/bin/sh
# injector.render_cli - the binary's render command: every
# cases/NAME.input.yaml renders to cases/NAME.pod.json (compared after the
# same printer: rendering the expected pod again leaves it as it is, since
# it is already injected), a denied pod exits 1 naming the annotation, a
# refused YAML exits 1 with line:col, and --patch prints the patch.
#   render_test.sh BIN CASES_DIR
set -u
bin=$1
cases=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/inj-render-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rc=0
fail() { echo "FAIL: $*" >&2; rc=1; }

n=0
for yaml in "$cases"/*.input.yaml; do
  name=$(basename "$yaml" .input.yaml)
  "$bin" render "$yaml" --config "$cases/injector.json" >"$tmp/got.json" ||
    fail "$name: render exited $?"
  "$bin" render "$cases/$name.pod.json" --config "$cases/injector.json" \
    >"$tmp/want.json" 2>"$tmp/want.err" || fail "$name: render of the expected pod"
  grep -q "already injected" "$tmp/want.err" || fail "$name: expected pod not seen as injected"
  cmp -s "$tmp/got.json" "$tmp/want.json" || {
    fail "$name: rendered pod differs"
    diff "$tmp/want.json" "$tmp/got.json" | head -40 >&2
  }
  "$bin" render "$yaml" --config "$cases/injector.json" --patch >"$tmp/patch.json" ||
    fail "$name: render --patch exited $?"
  grep -q '"path":	"/metadata/annotations/tollgate.io~1injected"' "$tmp/patch.json" ||
    fail "$name: --patch does not print the patch"
  n=$((n + 1))
done
[ "$n" -ge 1 ] || fail "no YAML cases in $cases"

cat >"$tmp/deny.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {tollgate.io/inject: "true", tollgate.io/dataplane-cpu: "fast"}
spec:
  containers: [{name: app, image: app:1}]
YAML
if "$bin" render "$tmp/deny.yaml" >/dev/null 2>"$tmp/err"; then
  fail "an invalid resource annotation was not denied"
fi
grep -q "tollgate.io/dataplane-cpu" "$tmp/err" || fail "the denial does not name the annotation"

printf 'a: &x 1\nb: *x\n' >"$tmp/anchor.yaml"
if "$bin" render "$tmp/anchor.yaml" >/dev/null 2>"$tmp/err"; then
  fail "an anchor was accepted"
fi
grep -q "anchor.yaml:1:4: anchors and aliases are not supported" "$tmp/err" ||
  fail "anchor message: $(cat "$tmp/err")"

# A file that cannot be read says why, not that it holds no document.
mkdir "$tmp/dir.yaml"
if "$bin" render "$tmp/dir.yaml" >/dev/null 2>"$tmp/err"; then
  fail "a directory was rendered"
fi
grep -q "dir.yaml: Is a directory" "$tmp/err" || fail "unreadable file: $(cat "$tmp/err")"

printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n' \
  >"$tmp/plain.yaml"
"$bin" render "$tmp/plain.yaml" --patch >"$tmp/none.json" 2>"$tmp/err" ||
  fail "a pod that did not opt in"
[ "$(tr -d ' \n' <"$tmp/none.json")" = "[]" ] || fail "no patch should print []"
"$bin" render "$tmp/plain.yaml" --default-inject --patch >"$tmp/some.json" ||
  fail "--default-inject"
grep -q initContainers "$tmp/some.json" || fail "--default-inject did not inject"
"$bin" render "$tmp/plain.yaml" --namespace kube-system --default-inject \
  --patch 2>"$tmp/err" >/dev/null
grep -q "kube-system" "$tmp/err" || fail "--namespace kube-system was injected"

[ $rc -eq 0 ] && echo "render: $n YAML case(s) and the refusals passed"
exit $rc
