"""standard_webhooks_verify.py - checks one webhook delivery with the
Standard Webhooks project's own Python library (not code of ours): the
tests that must show a CRM can verify what the dispatcher signs hand it the
delivery as the receiver recorded it.

    python standard_webhooks_verify.py SECRET DELIVERY_JSON

DELIVERY_JSON holds {"headers": {name: value, ...}, "body": "..."}. Prints
the verified payload's "type" and exits 0, or prints why and exits 1.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: standard_webhooks_verify.py SECRET DELIVERY_JSON", file=sys.stderr)
        return 2
    secret, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        delivery = json.load(f)
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    try:
        payload = Webhook(secret).verify(delivery["body"], headers)
    except WebhookVerificationError as e:
        print(f"not verified: {e}")
        return 1
    print(payload.get("type", ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
