#!/usr/bin/env python3
"""support/ftpd.py: the FTP server of the ftp specs (python3-pyftpdlib), unprivileged.

Usage: ftpd.py HOME
Listens on 127.0.0.1 on a port the system picks and prints "port N" once it does. User
"user" with password "secret" has every permission in HOME; anonymous users (and "ftp" with
socket.ftp's default password) may read and write in HOME/pub. Passive data ports are the system's choice too; active mode connects back
from an unprivileged port.
"""
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import ActiveDTP, FTPHandler
from pyftpdlib.servers import FTPServer


class HandedOverActiveDTP(ActiveDTP):
    """Works around a pyftpdlib 1.5.7 bug seen with concurrent active-mode sessions.

    Once an active data connection is made, its socket goes to the data channel, which closes
    it after the transfer; but the session closes this connector again when it ends, and
    takes the connector's old descriptor number out of the poller. By then that number may
    belong to another session's new control connection, which stalls for good (its commands
    stay unread). After the hand-over this connector owns nothing, so it is marked closed.
    """

    def handle_connect(self):
        super().handle_connect()
        self._closed = True


def main():
    home = sys.argv[1]
    debug = os.environ.get("UVSOCKET_FTPD_DEBUG")
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_user("user", "secret", home, perm="elradfmwMT")
    authorizer.add_anonymous(home + "/pub", perm="elradfmw")
    # socket.ftp's default login (ftp.USER, ftp.PASSWORD), into the same directory
    authorizer.add_user("ftp", "anonymous@anonymous.org", home + "/pub", perm="elradfmw")

    class Handler(FTPHandler):
        pass

    Handler.authorizer = authorizer
    Handler.active_dtp = HandedOverActiveDTP
    Handler.banner = "uvsocket test server ready"
    Handler.auth_failed_timeout = 0.05  # no 3 s pause after a refused login
    # Active mode: connect back from any port (not 20, which needs root).
    Handler.permit_privileged_ports = False
    server = FTPServer(("127.0.0.1", 0), Handler)
    server.max_cons = 64
    port = server.socket.getsockname()[1]
    print("port", port, flush=True)
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main()
