#!/usr/bin/env python3
"""Writes vectors.json: Port secret inputs encrypted by an implementation independent of
port-runner's (Python's `cryptography`), the way Port's docs and Port's own agent describe
them: AES-256-GCM, key = the first 32 bytes of the client secret, value =
base64(iv (16 bytes) | ciphertext | tag (16 bytes)).

Run from this directory: python3 make_vectors.py > vectors.json
The IVs are fixed so the file is reproducible; Port picks a random one per value.
"""
import base64
import json

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET = "test-client-secret-0123456789abcdef"  # the shared vectors' client secret (35 bytes)


def encrypt(secret: str, plaintext: str, iv: bytes) -> str:
    key = secret.encode("utf-8")[:32]
    ct_and_tag = AESGCM(key).encrypt(iv, plaintext.encode("utf-8"), None)
    return base64.b64encode(iv + ct_and_tag).decode("ascii")


cases = [
    ("password", "hunter2-s3cret"),
    ("empty", ""),
    ("unicode", "pässwörd ✓ 秘密"),
    ("multiline", "-----BEGIN KEY-----\nabc\n-----END KEY-----"),
    ("object", json.dumps({"user": "admin", "token": "tok-123"}, separators=(",", ":"))),
]
out = {"clientSecret": SECRET, "valid": [], "invalid": []}
for i, (name, plain) in enumerate(cases):
    iv = bytes([i + 1] * 16)
    out["valid"].append({"name": name, "plaintext": plain, "encrypted": encrypt(SECRET, plain, iv)})

good = base64.b64decode(out["valid"][0]["encrypted"])
tampered = bytearray(good)
tampered[20] ^= 1
out["invalid"] = [
    {"name": "tampered ciphertext", "encrypted": base64.b64encode(bytes(tampered)).decode()},
    {"name": "wrong key", "encrypted": encrypt("another-client-secret-0123456789xyz", "hunter2-s3cret", bytes([9] * 16))},
    {"name": "too short", "encrypted": base64.b64encode(b"\x00" * 31).decode()},
    {"name": "not base64", "encrypted": "***not base64***"},
    {"name": "truncated tag", "encrypted": base64.b64encode(good[:-1]).decode()},
]
print(json.dumps(out, indent=2, ensure_ascii=False))
