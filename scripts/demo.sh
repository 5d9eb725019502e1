#!/usr/bin/env bash
# make demo [ERP=tryton]: an ERP (the stand-in erp_sim, or a real Tryton through its sao
# web client), one instance for "Bennys Auto", one order posted with create_client.py and
# followed to `created`, then the worksheet's lines as the ERP itself reports them
# (erp_sim's /_sim read path; Tryton's JSON-RPC API). Everything lives in .demo/
# (recreated each run) and is stopped on exit. The first Tryton run installs Tryton into
# its own cached virtualenv (about a minute); later runs start it in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
DEMO=.demo
rm -rf "$DEMO" && mkdir -p "$DEMO"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_url() {  # url, seconds
  "$PY" - "$1" "$2" <<'PYEOF'
import sys, time, requests
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        if requests.get(url, timeout=1).ok:
            sys.exit(0)
    except requests.RequestException:
        pass
    time.sleep(0.1)
sys.exit(f"not ready: {url}")
PYEOF
}

ERP=${ERP:-erp_sim}
ERP_PORT=$(free_port)
API_PORT=$(free_port)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

case "$ERP" in
  erp_sim)
    echo "== starting the stand-in ERP on port $ERP_PORT (user admin / admin)"
    "$PY" -m erp_sim --port "$ERP_PORT" --db "$DEMO/erp.sqlite" > "$DEMO/erp.log" 2>&1 &
    pids+=($!)
    wait_url "http://127.0.0.1:$ERP_PORT/_sim/health" 20
    WORKSHEET=558 AMOUNT=5 ;;
  tryton)
    echo "== starting Tryton 8.0 + sao on port $ERP_PORT (database workshop, admin / admin)"
    "$PY" -m erp_tryton --port "$ERP_PORT" --data "$DEMO/tryton" > "$DEMO/erp.log" 2>&1 &
    pids+=($!)
    wait_url "http://127.0.0.1:$ERP_PORT/" 900
    export ERP_OPTION_DATABASE=workshop
    WORKSHEET=5 AMOUNT=4,7 ;;  # the draft sale with Reference 5; a Norwegian pump's amount
  *) echo "make demo: ERP must be erp_sim or tryton, not $ERP" >&2; exit 2 ;;
esac

export API_TOKEN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
export SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
export ERP_SYSTEM=$ERP ERP_URL="http://127.0.0.1:$ERP_PORT" ERP_USERNAME=admin ERP_PASSWORD=admin
export QUEUE_DIR="$DEMO/task_queue" LOG_DIR="$DEMO/logs"

echo "== starting: python api.py $API_PORT \"Bennys Auto\""
"$PY" api.py "$API_PORT" "Bennys Auto" > "$DEMO/api.out" 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$API_PORT/alive" 30

echo "== posting an order with create_client.py"
UNIQUEID="demo-$(date +%s)"
"$PY" create_client.py --url "http://127.0.0.1:$API_PORT" --workshop "Bennys Auto" \
  --worksheet "$WORKSHEET" --product-nr 10 --amount "$AMOUNT" --uniqueid "$UNIQUEID" --timeout 180

echo "== worksheet $WORKSHEET, as the ERP's own read path reports it:"
"$PY" - "$ERP" "http://127.0.0.1:$ERP_PORT" "$WORKSHEET" "$UNIQUEID" <<'PYEOF'
import sys
erp, url, worksheet, uniqueid = sys.argv[1:]
if erp == "tryton":  # Tryton's JSON-RPC API, not the integration
    from erp_tryton import rpc
    lines = [(l["product_code"], l["quantity"], l["description"] or "")
             for l in rpc.worksheet_lines(url, worksheet)]
else:  # erp_sim's own read path
    import requests
    sheet = requests.get(f"{url}/_sim/worksheets/{worksheet}", timeout=10).json()
    lines = [(l["product_nr"], l["amount"], l["reference"]) for l in sheet["lines"]]
for product, amount, text in lines:
    mark = "   <- this order" if uniqueid in text.split() else ""
    print(f"  product {product!s:>4}  amount {amount!s:>6}  {text}{mark}")
found = sum(uniqueid in text.split() for _, _, text in lines)
print(f"== {found} line(s) carry {uniqueid}")
sys.exit(0 if found == 1 else 1)
PYEOF
echo "== logs: $DEMO/logs/"
