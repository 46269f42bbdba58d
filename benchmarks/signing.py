"""How much parsing the PEM once saves: KeyRing.sign against pylti1p3's PEM-per-signature.

pylti1p3's ServiceConnector.encode_jwt calls ``jwt.encode(message, private_key_pem, "RS256")``,
so every client assertion (one per AGS/NRPS token request) re-parses the PEM and re-derives the
RSA key. The tool's KeyRing parses each key once per process and signs with the key object.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/signing.py [N]``). Prints signatures per
second and mean milliseconds for both, and the ratio. Nothing here is asserted: timings depend
on the machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import jwt
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lti_tool import keys  # noqa: E402
from lti_tool.db import Database  # noqa: E402
from lti_tool.models import ToolKey  # noqa: E402

N = 200
WARM_UP = 5


def claims() -> dict:
    now = int(time.time())
    return {
        "iss": "tool-client-1",
        "sub": "tool-client-1",
        "aud": "https://moodle.example/mod/lti/token.php",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }


def measure(label: str, sign, n: int) -> float:
    for _ in range(WARM_UP):
        sign()
    start = time.perf_counter()
    for _ in range(n):
        sign()
    elapsed = time.perf_counter() - start
    print(f"{label:<44} {n / elapsed:>9.1f} signatures/s   {elapsed / n * 1000:>8.3f} ms mean")
    return elapsed / n


def main(n: int = N) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        try:
            db.upgrade()
            keys.ensure_signing_key(db)
            ring = keys.KeyRing(db, timedelta(days=7))
            current = ring.current
            with db.sessions() as session:
                pem = session.scalar(select(ToolKey.private_pem).where(ToolKey.kid == current.kid))
            headers = {"kid": current.kid}

            print(f"RS256, {keys.KEY_SIZE}-bit key, N={n} each (after {WARM_UP} warm-up signatures)")
            ours = measure("KeyRing.sign (key object, parsed once)", lambda: ring.sign(claims()), n)
            theirs = measure(
                "jwt.encode with the PEM (pylti1p3's way)",
                lambda: jwt.encode(claims(), pem, algorithm="RS256", headers=headers),
                n,
            )
            print(f"KeyRing.sign is {theirs / ours:.1f}x faster per signature")
        finally:
            db.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else N)
