#!/usr/bin/env python3
"""support/smtpd.py: the SMTP server of the smtp specs (python3-aiosmtpd), unprivileged.

Usage: smtpd.py MAILDIR [CERTDIR]
Listens on 127.0.0.1 on a port the system picks and prints "port N" once it does. Each
message received is saved as MAILDIR/NNNN.eml (the data exactly as received, dot-stuffing
undone) with MAILDIR/NNNN.json beside it: {"from": ..., "to": [...], "login": ...}.
AUTH LOGIN and PLAIN are offered without TLS; the only account is "user" / "secret".
With CERTDIR (server.pem, server.key) STARTTLS is offered and AUTH only after it.
"""
import asyncio
import json
import os
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    def __init__(self, maildir):
        self.maildir = maildir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.maildir, "%04d" % self.count)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        login = session.login_data
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        with open(base + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "login": login}, f)
        # the .eml appears last and whole: a reader that sees it sees everything
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"user"
          and auth_data.password == b"secret")
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def main():
    maildir = sys.argv[1]
    tls_context = None
    if len(sys.argv) > 2:
        import ssl
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(os.path.join(sys.argv[2], "server.pem"),
                                    os.path.join(sys.argv[2], "server.key"))
    handler = Saver(maildir)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(handler, hostname="uvsocket-test", authenticator=authenticate,
                    auth_require_tls=tls_context is not None, tls_context=tls_context,
                    data_size_limit=64 * 1024 * 1024)

    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    print("port", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
