#!/usr/bin/env bash
# make demo: the stand-in ERP, one instance for "Bennys Auto", one order posted with
# create_client.py and followed to `created`, then the worksheet's lines as the ERP holds
# them. Everything lives in .demo/ (recreated each run) and is stopped on exit.
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

ERP_PORT=$(free_port)
API_PORT=$(free_port)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== starting the stand-in ERP on port $ERP_PORT (user admin / admin)"
"$PY" -m erp_sim --port "$ERP_PORT" --db "$DEMO/erp.sqlite" > "$DEMO/erp_sim.log" 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$ERP_PORT/_sim/health" 20

export API_TOKEN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
export SECRET_KEY=$("$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
export ERP_SYSTEM=erp_sim ERP_URL="http://127.0.0.1:$ERP_PORT" ERP_USERNAME=admin ERP_PASSWORD=admin
export QUEUE_DIR="$DEMO/task_queue" LOG_DIR="$DEMO/logs"

echo "== starting: python api.py $API_PORT \"Bennys Auto\""
"$PY" api.py "$API_PORT" "Bennys Auto" > "$DEMO/api.out" 2>&1 &
pids+=($!)
wait_url "http://127.0.0.1:$API_PORT/alive" 30

echo "== posting an order with create_client.py"
UNIQUEID="demo-$(date +%s)"
"$PY" create_client.py --url "http://127.0.0.1:$API_PORT" --workshop "Bennys Auto" \
  --worksheet 558 --product-nr 10 --amount 5 --uniqueid "$UNIQUEID" --timeout 120

echo "== worksheet 558 in the ERP now holds:"
"$PY" - "http://127.0.0.1:$ERP_PORT/_sim/worksheets/558" "$UNIQUEID" <<'PYEOF'
import sys, requests
sheet = requests.get(sys.argv[1], timeout=10).json()
for line in sheet["lines"]:
    mark = "   <- this order" if sys.argv[2] in line["reference"] else ""
    print(f"  product {line['product_nr']:>4}  amount {line['amount']:>6}  {line['reference']}{mark}")
found = sum(sys.argv[2] in line["reference"] for line in sheet["lines"])
print(f"== {found} line(s) carry {sys.argv[2]}")
sys.exit(0 if found == 1 else 1)
PYEOF
echo "== logs: $DEMO/logs/"
