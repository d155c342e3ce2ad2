"""Test helpers: see :mod:`strands_mesh_ros.testing`; plus :func:`route_replies` for raw Zenoh sessions."""

from strands_mesh_ros.testing import Proc, free_port, python_proc, wait_for  # noqa: F401


def route_replies(session, net, robot: str, replies: list, sender: str = "rogue") -> None:
    """Probe with valid 'status' commands until a reply reaches ``replies``: only then has the
    raw session's response subscription reached the robot's process. ``net`` needs ``prefix``."""
    from strands_mesh_ros.contract import CommandEnvelope, new_turn_id

    def probe():
        env = CommandEnvelope(sender_id=sender, turn_id="probe" + new_turn_id()[:8], command={"action": "status"})
        session.put(f"{net.prefix}/{robot}/cmd", env.to_json())
        return wait_for(lambda: replies, 0.2, what="probe reply") if not replies else True

    def attempt():
        try:
            return probe()
        except AssertionError:
            return False

    wait_for(attempt, 10, interval=0.0, what="raw session routed")
    replies.clear()


def make_pki(directory, members, *, rsa: bool = True, other_ca: tuple = (), hours: float = 2.0) -> None:
    """A test PKI as PEM files in ``directory``: ``ca.pem``/``ca.key`` (the fleet CA), a ``router``
    certificate with SAN localhost/127.0.0.1, one ``<cn>.pem``/``<cn>.key`` per member CN (keys
    mode 0600, as strands-robots 0.5.3 insists), and for each CN in ``other_ca`` one issued by a
    second, unrelated CA. RSA-2048 leaves (their ``rsa-pss-sha256``) unless ``rsa`` is False (EC P-256)."""
    import datetime
    import ipaddress
    import os
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    now = datetime.datetime.now(datetime.timezone.utc)

    def new_key():
        return rsa_keys.generate_private_key(65537, 2048) if rsa else ec.generate_private_key(ec.SECP256R1())

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, issuer, public_key, signer, ca, sans=None):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer).public_key(public_key)
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(hours=hours))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
        if not ca:
            b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                 .add_extension(x509.SubjectAlternativeName(sans or [x509.DNSName(subject)]), critical=False))
        return b.sign(signer, hashes.SHA256())

    def save(stem, key, crt):
        kp = directory / f"{stem}.key"
        kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        os.chmod(kp, 0o600)
        (directory / f"{stem}.pem").write_bytes(crt.public_bytes(serialization.Encoding.PEM))

    def issue(ca_key, ca_crt, cn, sans=None):
        key = new_key()
        save(cn, key, cert(cn, ca_crt.subject, key.public_key(), ca_key, False, sans))

    ca_key = new_key()
    ca_crt = cert("strands fleet test CA", name("strands fleet test CA"), ca_key.public_key(), ca_key, True)
    save("ca", ca_key, ca_crt)
    issue(ca_key, ca_crt, "router", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    for cn in members:
        issue(ca_key, ca_crt, cn)
    if other_ca:
        o_key = new_key()
        o_crt = cert("another CA", name("another CA"), o_key.public_key(), o_key, True)
        for cn in other_ca:
            issue(o_key, o_crt, cn)
