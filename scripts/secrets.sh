#!/usr/bin/env bash
# scripts/secrets.sh [FILE] - write a .env for compose.yaml with fresh random
# secrets (`make secrets`; FILE defaults to .env at the repository root).
#
# .env.example is the template: every value it ships as an example (each
# *_PASSWORD and *_SECRET, the SECRETS_KEYS ring) is replaced by one drawn from the
# kernel's random source, every other line is copied as it is. The example
# values themselves are refused at start by the services (libs/core/
# weak_secret.h) and by compose's kafka-setup job (docker/kafka/setup.sh).
# An existing FILE is never overwritten (it holds the keys that open the
# sealed secrets in PostgreSQL); the new one is created mode 600.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$REPO/.env}"
TEMPLATE="$REPO/.env.example"

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

fresh_line() {
    local line=$1 name=${1%%=*}
    case "$line" in
        \#* | '' | *[!A-Za-z0-9_]*=*) printf '%s\n' "$line"; return ;;
    esac
    case "$name" in
        *_PASSWORD | *_PASSWORD_*) printf '%s=%s\n' "$name" "$(random_hex 24)" ;;
        SECRETS_KEYS) printf '%s=k1:%s\n' "$name" "$(random_hex 32)" ;;
        *_SECRET) printf '%s=%s\n' "$name" "$(random_hex 32)" ;;
        *) printf '%s\n' "$line" ;;
    esac
}

if [ -e "$OUT" ] || [ -L "$OUT" ]; then
    echo "secrets: $OUT exists; it is not overwritten (it holds the keys of the sealed" \
        "secrets). Move it away first to start afresh." >&2
    exit 1
fi
umask 077
set -o noclobber
{
    while IFS= read -r line || [ -n "$line" ]; do
        fresh_line "$line"
    done <"$TEMPLATE"
} >"$OUT"
echo "secrets: wrote $OUT (mode 600) with fresh passwords and keys; keep it out of version control"
