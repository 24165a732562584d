// tls_session.cpp: see tls_session.hpp. Layer: transport.
#include "socket/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "socket/errors.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

namespace {

// --- the BIO between OpenSSL and the descriptor ------------------------------------------------

TlsSession* session_of(BIO* b) { return static_cast<TlsSession*>(BIO_get_data(b)); }

int bio_write(BIO* b, const char* data, size_t len, size_t* written) {
  TlsSession* t = session_of(b);
  BIO_clear_retry_flags(b);
  const int fd = t->sock->fd;
  if (fd < 0) {
    t->sys_err = EPIPE;
    return 0;
  }
  for (;;) {
    // MSG_NOSIGNAL: a peer that went away gives EPIPE, never SIGPIPE.
    const ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
    if (n >= 0) {
      *written = static_cast<size_t>(n);
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_write(b);
    } else {
      t->sys_err = errno;
    }
    return 0;
  }
}

int bio_read(BIO* b, char* out, size_t len, size_t* got) {
  TlsSession* t = session_of(b);
  BIO_clear_retry_flags(b);
  if (t->early) {
    // The bytes the socket had read before wrap come first: they are the start of the stream.
    size_t n = t->early_len - t->early_off;
    if (n > len) n = len;
    std::memcpy(out, t->early + t->early_off, n);
    t->early_off += n;
    if (t->early_off == t->early_len) {
      std::free(t->early);  // from tls_new
      t->early = nullptr;
    }
    *got = n;
    return 1;
  }
  Socket* s = t->sock;
  if (s->fd < 0) {
    t->eof = true;
    return 0;
  }
  // As for plain reads: after a short read, the socket is known to be empty until its watcher
  // reports it readable again, and recv() is not asked in vain.
  if (FdWatch* w = watch_of(s); w && !w->maybe_readable()) {
    BIO_set_retry_read(b);
    return 0;
  }
  for (;;) {
    const ssize_t n = ::recv(s->fd, out, len, 0);
    if (n > 0) {
      if (FdWatch* w = watch_of(s); static_cast<size_t>(n) < len && w) w->drained();
      *got = static_cast<size_t>(n);
      return 1;
    }
    if (n == 0) {
      t->eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (FdWatch* w = watch_of(s)) w->drained();
      BIO_set_retry_read(b);
    } else {
      t->sys_err = errno;
    }
    return 0;
  }
}

long bio_ctrl(BIO* b, int cmd, long num, void* ptr) {
  (void)num;
  (void)ptr;
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return session_of(b)->eof ? 1 : 0;
    default:
      return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

// The method table, shared by the Lua states of the process that loaded the module: made by
// the first tls_retain, freed by the last tls_release (each state's module does one of each).
std::mutex g_method_lock;
BIO_METHOD* g_method = nullptr;
int g_method_users = 0;

BIO_METHOD* bio_method() { return g_method; }

// --- errors ------------------------------------------------------------------------------------

// The outcome of a failed SSL_* call `r`, with the message kept in the session for kTlsFailed.
int failure(TlsSession* t, int r) {
  const int e = SSL_get_error(t->ssl, r);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      return kTlsWantRead;
    case SSL_ERROR_WANT_WRITE:
      return kTlsWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return kIoClosed;
    default:
      break;
  }
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (e == SSL_ERROR_SYSCALL || code == 0) {
    // The descriptor failed, or the stream ended where OpenSSL did not expect it to.
    if (t->sys_err) {
      const int err = t->sys_err;
      t->sys_err = 0;
      return err;
    }
    return kIoClosed;
  }
  const int reason = ERR_GET_REASON(code);
  if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) return kIoClosed;
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    const long v = SSL_get_verify_result(t->ssl);
    std::snprintf(t->message, sizeof t->message, "certificate verify failed: %s",
                  X509_verify_cert_error_string(v));
    return kTlsFailed;
  }
  const char* why = ERR_reason_error_string(code);
  if (why) {
    std::snprintf(t->message, sizeof t->message, "%s", why);
  } else {
    std::snprintf(t->message, sizeof t->message, "TLS error %lu", code);
  }
  return kTlsFailed;
}

}  // namespace

void tls_retain() {
  std::lock_guard<std::mutex> guard(g_method_lock);
  if (g_method_users++ > 0) return;
  g_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "uvsocket");
  if (g_method) {
    BIO_meth_set_write_ex(g_method, bio_write);
    BIO_meth_set_read_ex(g_method, bio_read);
    BIO_meth_set_ctrl(g_method, bio_ctrl);
    BIO_meth_set_create(g_method, bio_create);
  }
}

void tls_release() {
  std::lock_guard<std::mutex> guard(g_method_lock);
  if (--g_method_users > 0) return;
  if (g_method) BIO_meth_free(g_method);
  g_method = nullptr;
}

TlsSession* tls_new(Socket* s, SSL_CTX* ctx, bool server, const char** why) {
  *why = "out of memory";
  BIO_METHOD* method = bio_method();
  if (!method) return nullptr;
  auto* t = new (std::nothrow) TlsSession();  // freed in tls_free
  if (!t) return nullptr;
  t->sock = s;
  t->server = server;
  t->ssl = SSL_new(ctx);
  BIO* bio = t->ssl ? BIO_new(method) : nullptr;
  if (!bio) {
    if (t->ssl) SSL_free(t->ssl);
    delete t;
    ERR_clear_error();
    return nullptr;
  }
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);  // the SSL owns the BIO from now on
  // A write that must be retried may come back with the string at another address only if
  // the caller changed it; partial writes let a large send report progress record by record.
  SSL_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
  }
  // What the socket read before the upgrade belongs to the TLS stream (STARTTLS pipelining).
  if (!s->buf.empty()) {
    t->early_len = s->buf.size();
    t->early = static_cast<char*>(std::malloc(t->early_len));  // freed in bio_read or tls_free
    if (!t->early) {
      SSL_free(t->ssl);
      delete t;
      return nullptr;
    }
    std::memcpy(t->early, s->buf.data(), t->early_len);
    s->buf.consume(s->sr->pool(), t->early_len);
  }
  return t;
}

void tls_free(Socket* s) {
  TlsSession* t = s->tls;
  if (!t) return;
  s->tls = nullptr;
  if (t->handshaken && s->fd >= 0) {
    // close_notify if the kernel takes it now; never waits (the descriptor is non-blocking
    // and the BIO reports a full buffer as "retry", which is then given up).
    (void)SSL_shutdown(t->ssl);
  }
  ERR_clear_error();
  SSL_free(t->ssl);
  std::free(t->early);
  delete t;  // allocated in tls_new
}

int tls_handshake(Socket* s) {
  TlsSession* t = s->tls;
  ERR_clear_error();
  const int r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    t->handshaken = true;
    return kIoDone;
  }
  return failure(t, r);
}

int tls_read(Socket* s, char* at, size_t room, size_t* got) {
  TlsSession* t = s->tls;
  ERR_clear_error();
  const int r = SSL_read_ex(t->ssl, at, room, got);
  if (r == 1) return kIoDone;
  return failure(t, r);
}

int tls_write(Socket* s, const char* data, size_t len, size_t* written) {
  TlsSession* t = s->tls;
  ERR_clear_error();
  const int r = SSL_write_ex(t->ssl, data, len, written);
  if (r == 1) {
    t->handshaken = true;  // a write before dohandshake() made the handshake itself
    return kIoDone;
  }
  return failure(t, r);
}

void tls_close_notify(Socket* s) {
  TlsSession* t = s->tls;
  if (!t || !t->handshaken || s->fd < 0) return;
  (void)SSL_shutdown(t->ssl);
  ERR_clear_error();
}

bool tls_pending(const Socket* s) {
  const TlsSession* t = s->tls;
  return t && (t->early || SSL_has_pending(t->ssl));
}

}  // namespace uvs::socket
