// tls_session.hpp: the TLS state of a socket of class tls{client}, and the three steps its
// operations are made of (read into the receive buffer, write, handshake), each non-blocking
// and retryable. Layer: transport (OpenSSL; no Lua calls).
//
// A TlsSession lives on the heap (new, freed by tls_free when the socket closes or is
// collected) and the Socket points at it: the Socket stays trivially destructible in Lua
// memory. OpenSSL reads and writes the descriptor through a BIO of our own (tls_session.cpp):
// sends carry MSG_NOSIGNAL, so a peer that went away never raises SIGPIPE, and reads consult
// the socket's watcher so that a drained socket is not asked again before it reports data.
// Decrypted bytes go into the socket's one receive buffer, where the receive patterns match
// them as they match plain TCP data.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>

namespace uvs::socket {

struct Socket;

// What a TLS step can report besides kIoDone, kIoClosed and errno values (errors.hpp).
constexpr int kTlsWantRead = -400;   // retry when the descriptor is readable
constexpr int kTlsWantWrite = -401;  // retry when it is writable
constexpr int kTlsFailed = -402;     // a TLS failure: TlsSession::message says which

struct TlsSession {
  SSL* ssl = nullptr;      // SSL_free in tls_free
  Socket* sock = nullptr;  // the socket it belongs to (its memory outlives the session)
  char* early = nullptr;   // bytes the socket had buffered before wrap, read first (malloc)
  size_t early_len = 0;
  size_t early_off = 0;
  int sys_err = 0;   // errno of the last failed send/recv in the BIO
  bool eof = false;  // the BIO met the end of the stream
  bool server = false;
  bool handshaken = false;
  char message[256] = {};  // the last kTlsFailed message
};

// The module's use of OpenSSL state of its own (the BIO method): taken when a Lua state opens
// the module, given back when that state closes (tls.cpp). Sessions exist only in between.
void tls_retain();
void tls_release();

// Creates the session of `s` for `ctx` (client or server side), taking over the bytes `s` has
// already buffered: they are the start of the TLS stream. Returns nullptr when OpenSSL cannot
// allocate (message in `why`).
[[nodiscard]] TlsSession* tls_new(Socket* s, SSL_CTX* ctx, bool server, const char** why);
// Frees the session after a best-effort, non-blocking close_notify. Leaves s->tls null.
void tls_free(Socket* s);

// One handshake step: kIoDone when it finished, kTlsWantRead/kTlsWantWrite, kIoClosed or
// kTlsFailed.
[[nodiscard]] int tls_handshake(Socket* s);
// Reads decrypted bytes into `at` (room for `room`): kIoDone with the count in `*got`,
// kIoClosed at the end of the stream, kTlsWantRead/kTlsWantWrite, an errno value or kTlsFailed.
[[nodiscard]] int tls_read(Socket* s, char* at, size_t room, size_t* got);
// Writes up to `len` (> 0) bytes: kIoDone with the count taken in `*written`, or
// kTlsWantRead/kTlsWantWrite, kIoClosed, an errno value or kTlsFailed. A write that must be
// retried is retried with the same bytes (OpenSSL requires it; the string stays on the stack).
[[nodiscard]] int tls_write(Socket* s, const char* data, size_t len, size_t* written);
// Sends close_notify if it can without waiting (shutdown "send"). Best effort.
void tls_close_notify(Socket* s);
// Whether decrypted or undecrypted bytes wait inside the session (for dirty()).
[[nodiscard]] bool tls_pending(const Socket* s);

}  // namespace uvs::socket
