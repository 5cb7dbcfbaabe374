#!/usr/bin/env python3
"""Writes the client-side secret input vectors: values encrypted by an implementation independent
of port-runner's (Python's `cryptography`), the way Port's docs describe client-side encryption
(docs/actions-and-automations/create-self-service-experiences/setup-ui-for-action/user-inputs/secret.md):
a random AES-256 key encrypts the value with AES-256-GCM (12-byte IV, no additional data), the
AES key is wrapped with the input's RSA public key, RSA-OAEP with SHA-256 (MGF1-SHA-256, no
label), and the value is base64(iv (12) | wrapped key (modulus size) | ciphertext | tag (16)).

Run from this directory: python3 make_vectors.py
It writes key2048.pem (PKCS #8), key3072.pem (PKCS #1, "RSA PRIVATE KEY") and vectors.json.
These keys are for tests only. OAEP and the IVs are random, so every run writes other bytes;
the vectors are what one run wrote.
"""
import base64
import json
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def new_key(bits):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def encrypt(key, plaintext: bytes) -> bytes:
    aes_key, iv = os.urandom(32), os.urandom(12)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    wrapped = key.public_key().encrypt(aes_key, oaep)
    return iv + wrapped + AESGCM(aes_key).encrypt(iv, plaintext, None)


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


k2048, k3072, other = new_key(2048), new_key(3072), new_key(2048)
with open("key2048.pem", "wb") as f:
    f.write(k2048.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
with open("key3072.pem", "wb") as f:
    f.write(k3072.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()))

cases = [
    ("password", "hunter2-s3cret", k2048),
    ("empty", "", k2048),
    ("unicode", "pässwörd ✓ 秘密", k3072),
    ("multiline", "-----BEGIN KEY-----\nabc\n-----END KEY-----", k3072),
    ("object", json.dumps({"user": "admin", "token": "tok-123"}, separators=(",", ":")), k2048),
]
out = {"keys": ["key2048.pem", "key3072.pem"],
       "publicKeys": {"key2048.pem": public_pem(k2048), "key3072.pem": public_pem(k3072), "other": public_pem(other)},
       "valid": [], "invalid": []}
for name, plain, key in cases:
    out["valid"].append({"name": name, "plaintext": plain, "publicKey": public_pem(key),
                         "encrypted": b64(encrypt(key, plain.encode("utf-8")))})

good = base64.b64decode(out["valid"][0]["encrypted"])
tampered_ct = bytearray(good)
tampered_ct[-20] ^= 1
tampered_key = bytearray(good)
tampered_key[40] ^= 1
out["invalid"] = [
    {"name": "tampered ciphertext", "encrypted": b64(bytes(tampered_ct))},
    {"name": "tampered wrapped key", "encrypted": b64(bytes(tampered_key))},
    {"name": "another key's value", "encrypted": b64(encrypt(other, b"hunter2-s3cret"))},
    {"name": "another key named", "publicKey": public_pem(other), "encrypted": out["valid"][0]["encrypted"]},
    {"name": "truncated tag", "encrypted": b64(good[:-1])},
    {"name": "too short", "encrypted": b64(good[:12 + 256])},
    {"name": "not base64", "encrypted": "***not base64***"},
    {"name": "an aes256-gcm value", "encrypted": b64(bytes(16) + AESGCM(bytes(32)).encrypt(bytes(16)[:12], b"x", None))},
]
with open("vectors.json", "w") as f:
    f.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
