"""Checkpoints signed through PKCS#11 by a real SoftHSM2 token whose Ed25519 key can never be exported."""

import os
import shutil
import subprocess
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from service.journal import note
from tests.journal.test_checkpoints import ORIGIN, _append, _event, _leaves, _root, _stored
from tests.support.cli import db_env, gatehouse

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "4711-0815"
ED25519_OID = "1.3.101.112"


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    """A SoftHSM2 token of this module with an Ed25519 key pair generated inside it: sensitive, not extractable.

    One per module: python-pkcs11 loads the library once per process, and SoftHSM2 reads SOFTHSM2_CONF then.
    """
    if not MODULE.exists() or not shutil.which("softhsm2-util"):
        pytest.fail("needs Debian softhsm2 (tests/run installs it)")
    tmp_path = tmp_path_factory.mktemp("softhsm")
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "journal", "--pin", PIN, "--so-pin",
                    "so-" + PIN], check=True, capture_output=True, env={"SOFTHSM2_CONF": str(conf)})
    lib = pkcs11.lib(str(MODULE))
    with lib.get_token(token_label="journal").open(user_pin=PIN, rw=True) as session:
        public, _ = session.generate_keypair(
            KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True, label="checkpoints",
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)},
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
        point = bytes(public[Attribute.EC_POINT])
    yield conf, lib, point[2:]
    os.environ.pop("SOFTHSM2_CONF", None)


def test_checkpoints_are_signed_by_the_token_and_its_key_cannot_be_exported(database, token):
    conf, lib, public = token
    env = {**db_env(database), "SOFTHSM2_CONF": str(conf), "GATEHOUSE_JOURNAL_ORIGIN": ORIGIN,
           "GATEHOUSE_JOURNAL_PKCS11_MODULE": str(MODULE), "GATEHOUSE_JOURNAL_PKCS11_TOKEN": "journal",
           "GATEHOUSE_JOURNAL_PKCS11_KEY": "checkpoints", "GATEHOUSE_JOURNAL_PKCS11_PIN": PIN}
    for n in (3, 8):
        _append(database.app_url, [_event(i) for i in range(n - len(_leaves(database)))])
        done = gatehouse("journal", "checkpoint", env=env)
        assert done.returncode == 0, done.stderr
        opened = note.open_checkpoint(done.stdout, ORIGIN, public)
        assert (opened.size, opened.root) == (n, _root(_leaves(database)))
    assert [(row[0], row[5]) for row in _stored(database)] == [(3, "pkcs11"), (8, "pkcs11")]
    verified = gatehouse("journal", "verify", "--key", note.verifier_key(ORIGIN, public), env=env)
    assert (verified.returncode, verified.stdout.split()[:2]) == (0, ["OK", "8"])

    with lib.get_token(token_label="journal").open(user_pin=PIN, rw=True) as session:
        private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label="checkpoints")
        assert (private[Attribute.SENSITIVE], private[Attribute.EXTRACTABLE]) == (True, False)
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[Attribute.VALUE]  # the key's bytes: refused
        wrapping = session.generate_key(KeyType.AES, 256, template={Attribute.WRAP: True, Attribute.EXTRACTABLE: True})
        with pytest.raises(pkcs11.exceptions.KeyUnextractable):
            wrapping.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)  # nor wrapped for export
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            private[Attribute.EXTRACTABLE] = True  # and it cannot be made extractable


def test_a_wrong_pin_or_label_is_one_clear_error(database, token):
    conf, _, _ = token
    env = {**db_env(database), "SOFTHSM2_CONF": str(conf), "GATEHOUSE_JOURNAL_ORIGIN": ORIGIN,
           "GATEHOUSE_JOURNAL_PKCS11_MODULE": str(MODULE), "GATEHOUSE_JOURNAL_PKCS11_TOKEN": "journal",
           "GATEHOUSE_JOURNAL_PKCS11_KEY": "checkpoints", "GATEHOUSE_JOURNAL_PKCS11_PIN": "wrong"}
    done = gatehouse("journal", "checkpoint", env=env)
    assert (done.returncode, done.stderr.count("\n"), "PinIncorrect" in done.stderr) == (2, 1, True), done.stderr
    done = gatehouse("journal", "checkpoint", env={**env, "GATEHOUSE_JOURNAL_PKCS11_PIN": PIN,
                                                   "GATEHOUSE_JOURNAL_PKCS11_KEY": "nope"})
    assert (done.returncode, done.stderr.count("\n"), "'nope'" in done.stderr) == (2, 1, True), done.stderr
    assert _stored(database) == []
