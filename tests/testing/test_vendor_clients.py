"""Fidelity: clients written by someone else, the vendor documentation's own, run against the sandbox
unchanged but for the base URL (the sandbox takes their placeholder key and numbers its first order
``API-1234567890`` like the examples)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kopechka.testing import Sandbox

DOCS_URL = "https://api.kopechka.com/api/v1"

# The documentation's curl block, verbatim.
CURL = r"""# Balance check
curl -X GET "https://api.kopechka.com/api/v1/balance" \
-H "X-API-Key: YOUR_API_KEY"
# Create order
curl -X POST "https://api.kopechka.com/api/v1/orders" \
-H "X-API-Key: YOUR_API_KEY" \
-H "Content-Type: application/json" \
-d '{
"domain": "example.com",
"site": "site.com"
}'
# Fetch messages
curl -X GET "https://api.kopechka.com/api/v1/orders/API-1234567890/messages" \
-H "X-API-Key: YOUR_API_KEY"
# Cancel order
curl -X DELETE "https://api.kopechka.com/api/v1/orders/API-1234567890" \
-H "X-API-Key: YOUR_API_KEY"
"""

# The documentation's Python example, verbatim.
PYTHON = """import requests
class KopeechkaAPI:
    def __init__(self, api_key):
        self.base_url = 'https://api.kopechka.com/api/v1'
        self.headers = {
            'X-API-Key': api_key,
            'Content-Type': 'application/json'
        }
    def get_balance(self):
        response = requests.get(f'{self.base_url}/balance', headers=self.headers)
        return response.json()
    def create_order(self, domain, site):
        data = {'domain': domain, 'site': site}
        response = requests.post(f'{self.base_url}/orders', json=data, headers=self.headers)
        return response.json()
    def get_messages(self, order_id):
        response = requests.get(f'{self.base_url}/orders/{order_id}/messages', headers=self.headers)
        return response.json()
    def cancel_order(self, order_id):
        response = requests.delete(f'{self.base_url}/orders/{order_id}', headers=self.headers)
        return response.json()
# Usage
api = KopeechkaAPI('YOUR_API_KEY')
# Balance check
balance = api.get_balance()
print(f"Balance: {balance['data']['balance']}")
# Create order
order = api.create_order('example.com', 'instagram.com')
print(f"Order ID: {order['data']['orderId']}")
"""

# The documentation's axios example, verbatim, with calls added at the end to run it.
AXIOS = """const axios = require('axios');
const api = axios.create({
baseURL: 'https://api.kopechka.com/api/v1',
headers: {
'X-API-Key': 'YOUR_API_KEY',
'Content-Type': 'application/json'
}
});
// Balance check
async function getBalance() {
try {
const response = await api.get('/balance');
console.log('Balance:', response.data.data.balance);
} catch (error) {
console.error('Error:', error.response.data);
}
}
// Create order
async function createOrder() {
try {
const response = await api.post('/orders', {
domain: 'example.com',
site: 'instagram.com'
});
console.log('Order created:', response.data.data);
} catch (error) {
console.error('Error:', error.response.data);
}
}
// Fetch messages
async function getMessages(orderId) {
try {
const response = await api.get(`/orders/${orderId}/messages`);
console.log('Messages:', response.data.messages);
} catch (error) {
console.error('Error:', error.response.data);
}
}
(async () => { await getBalance(); await createOrder(); await getMessages('API-1234567890'); })();
"""


@pytest.fixture
def vendor_sandbox() -> Iterator[Sandbox]:
    with Sandbox(api_key="YOUR_API_KEY") as sandbox:
        yield sandbox


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_vendor_curl_commands(vendor_sandbox: Sandbox) -> None:
    commands = [c for c in CURL.replace(DOCS_URL, vendor_sandbox.url).split("# ") if c.strip()]
    answers = []
    for command in commands:
        script = command.split("\n", 1)[1]
        out = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True
        )
        answers.append(json.loads(out.stdout))
    balance, created, messages, cancelled = answers
    assert balance == {"success": True, "data": {"balance": 100.0}}
    assert created["data"]["orderId"] == "API-1234567890"
    assert created["data"]["site"] == "site.com"
    assert messages["success"] is True
    assert messages["messages"] == []
    assert messages["order"]["created_at"].endswith("Z")
    assert cancelled == {
        "success": True,
        "message": "Order cancelled and refund processed",
        "refundAmount": 5.0,
    }
    assert vendor_sandbox.balance == 100


def test_vendor_python_example(vendor_sandbox: Sandbox, tmp_path: Path) -> None:
    script = tmp_path / "vendor_example.py"
    script.write_text(PYTHON.replace(DOCS_URL, vendor_sandbox.url))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.splitlines() == ["Balance: 100.0", "Order ID: API-1234567890"]
    assert vendor_sandbox.requests[-1].json() == {"domain": "example.com", "site": "instagram.com"}


def _node_with_axios() -> dict[str, str] | None:
    node = shutil.which("node")
    if node is None:
        return None
    env = dict(os.environ)
    extra = os.environ.get("KOPECHKA_AXIOS_NODE_PATH")
    if extra:
        env["NODE_PATH"] = extra
    found = subprocess.run(
        [node, "-e", "require.resolve('axios')"],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return env if found.returncode == 0 else None


NODE_ENV = _node_with_axios()


@pytest.mark.skipif(NODE_ENV is None, reason="Node.js with axios is not available (see .ci/run)")
def test_vendor_axios_example(vendor_sandbox: Sandbox, tmp_path: Path) -> None:
    script = tmp_path / "vendor_example.js"
    script.write_text(AXIOS.replace(DOCS_URL, vendor_sandbox.url))
    out = subprocess.run(
        ["node", str(script)], env=NODE_ENV, capture_output=True, text=True, timeout=60, check=True
    )
    lines = out.stdout.splitlines()
    assert lines[0] == "Balance: 100"
    assert "orderId: 'API-1234567890'" in out.stdout
    assert "Messages: []" in out.stdout
    assert out.stderr == ""
