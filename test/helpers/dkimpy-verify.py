# Verify every DKIM-Signature of the message on stdin with dkimpy (python3-dkim),
# an implementation independent of mailauth. argv[1]: JSON {dns name: TXT value}.
# Prints a JSON list, one {"ok": bool, "error": str|null} per signature, topmost first.
import json
import sys

import dkim

records = {k.lower().rstrip('.'): v for k, v in json.loads(sys.argv[1]).items()}
message = sys.stdin.buffer.read()


def dnsfunc(name, timeout=5):
    key = (name.decode() if isinstance(name, bytes) else name).lower().rstrip('.')
    value = records.get(key)
    return value.encode() if value is not None else None


headers, _ = dkim.rfc822_parse(message)
count = sum(1 for (k, _) in headers if k.lower() == b'dkim-signature')
out = []
for idx in range(count):
    try:
        ok = dkim.DKIM(message).verify(idx=idx, dnsfunc=dnsfunc)
        out.append({'ok': bool(ok), 'error': None})
    except Exception as e:  # dkimpy raises on malformed signatures and keys
        out.append({'ok': False, 'error': '%s: %s' % (type(e).__name__, e)})
print(json.dumps(out))
