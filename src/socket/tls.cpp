// tls.cpp: the C half of socket.tls: contexts (class tls{context}, an SSL_CTX made from a
// parameter table of LuaSec's shape), wrap (a tcp{client} becomes a tls{client}, the same
// object) and the tls{client} methods. Layer: glue (Lua-facing, OpenSSL).
//
// lua/socket/tls.lua is the Lua half: defaults, the context cache, the server name. A tls{client}
// is still the same Socket: its receive buffer, timeouts, watcher and operation slots; only its
// continuations differ (stream.cpp, instantiated for TLS). The handshake is an operation of the
// write direction, like connect, whose continuation it is: a send waits its turn behind it (or,
// without one, makes the handshake itself), a receive before it is done fails at once.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

#include "loop/runtime.hpp"
#include "lua/udata.hpp"
#include "socket/common.hpp"
#include "socket/errors.hpp"
#include "socket/options.hpp"
#include "socket/stream.hpp"
#include "socket/tls_session.hpp"

namespace uvs::socket {

namespace {

constexpr const char* kClient = "tls{client}";
constexpr const char* kContext = "tls{context}";

// --- contexts ----------------------------------------------------------------------------------

// What a context needs besides its SSL_CTX, owned by the SSL_CTX itself (ex_data, freed with
// it): connections keep their SSL_CTX alive after the Lua object is collected, and their
// callbacks read this.
struct CtxExtra {
  unsigned char* alpn = nullptr;  // wire format (length-prefixed names), malloc
  size_t alpn_len = 0;
  struct Sni {
    char* name;      // malloc
    SSL_CTX* ctx;    // a reference (SSL_CTX_up_ref), freed with this
  }* sni = nullptr;  // malloc
  int nsni = 0;
  bool server = false;
  bool verify = false;
};

void extra_free(void* parent, void* ptr, CRYPTO_EX_DATA* ad, int idx, long argl, void* argp) {
  (void)parent;
  (void)ad;
  (void)idx;
  (void)argl;
  (void)argp;
  auto* x = static_cast<CtxExtra*>(ptr);
  if (!x) return;
  for (int i = 0; i < x->nsni; i++) {
    std::free(x->sni[i].name);
    SSL_CTX_free(x->sni[i].ctx);
  }
  std::free(x->sni);
  std::free(x->alpn);
  delete x;  // allocated in new_ctx
}

int extra_index() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, extra_free);
  return idx;
}

CtxExtra* extra_of(SSL_CTX* ctx) {
  return static_cast<CtxExtra*>(SSL_CTX_get_ex_data(ctx, extra_index()));
}

// The Lua object: a box for one reference to the SSL_CTX (freed in __gc).
struct ContextBox {
  SSL_CTX* ctx;
};

int ctx_gc(lua_State* L) {
  auto* b = static_cast<ContextBox*>(luaL_checkudata(L, 1, kContext));
  if (b->ctx) SSL_CTX_free(b->ctx);
  b->ctx = nullptr;
  return 0;
}

SSL_CTX* check_ctx(lua_State* L, int idx) {
  auto* b = static_cast<ContextBox*>(luaL_checkudata(L, idx, kContext));
  luaL_argcheck(L, b->ctx != nullptr, idx, "context is gone");
  return b->ctx;
}

// The message of the last OpenSSL error, for a context that could not be made.
const char* ssl_reason(char* buf, size_t size, const char* what) {
  const unsigned long code = ERR_peek_last_error();
  const char* why = code ? ERR_reason_error_string(code) : nullptr;
  std::snprintf(buf, size, "%s: %s", what, why ? why : "failed");
  ERR_clear_error();
  return buf;
}

// The strings of field `key` of the table at `t`: one string or an array of them. Calls
// `fn(name)` for each; returns false (with nothing called) when the field is absent.
template <class Fn>
bool each_string(lua_State* L, int t, const char* key, Fn fn) {
  const int type = lua_getfield(L, t, key);
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return false;
  }
  if (type == LUA_TSTRING) {
    fn(lua_tostring(L, -1));
  } else if (type == LUA_TTABLE) {
    const lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
        luaL_error(L, "TLS parameter '%s': strings expected", key);
      }
      fn(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else {
    luaL_error(L, "TLS parameter '%s': string or array of strings expected", key);
  }
  lua_pop(L, 1);
  return true;
}

const char* opt_string(lua_State* L, int t, const char* key) {
  const int type = lua_getfield(L, t, key);
  const char* v = nullptr;
  if (type == LUA_TSTRING) {
    v = lua_tostring(L, -1);  // the table keeps the string alive
  } else if (type != LUA_TNIL) {
    luaL_error(L, "TLS parameter '%s': string expected", key);
  }
  lua_pop(L, 1);
  return v;
}

struct NamedOption {
  const char* name;
  uint64_t bits;
};

const NamedOption kOptions[] = {
    {"all", SSL_OP_ALL},
    {"no_sslv2", 0},  // never supported by OpenSSL 3
    {"no_sslv3", SSL_OP_NO_SSLv3},
    {"no_tlsv1", SSL_OP_NO_TLSv1},
    {"no_tlsv1_1", SSL_OP_NO_TLSv1_1},
    {"no_tlsv1_2", SSL_OP_NO_TLSv1_2},
    {"no_tlsv1_3", SSL_OP_NO_TLSv1_3},
    {"no_compression", SSL_OP_NO_COMPRESSION},
    {"no_ticket", SSL_OP_NO_TICKET},
    {"no_renegotiation", SSL_OP_NO_RENEGOTIATION},
    {"cipher_server_preference", SSL_OP_CIPHER_SERVER_PREFERENCE},
    {"single_dh_use", SSL_OP_SINGLE_DH_USE},
    {"single_ecdh_use", SSL_OP_SINGLE_ECDH_USE},
    {"no_session_resumption_on_renegotiation", SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION},
    {"ignore_unexpected_eof", SSL_OP_IGNORE_UNEXPECTED_EOF},
    {"allow_unsafe_legacy_renegotiation", SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION},
};

struct NamedVersion {
  const char* name;
  int min;
  int max;
};

const NamedVersion kProtocols[] = {
    {"any", 0, 0},
    {"sslv23", 0, 0},
    {"tlsv1", TLS1_VERSION, TLS1_VERSION},
    {"tlsv1_1", TLS1_1_VERSION, TLS1_1_VERSION},
    {"tlsv1_2", TLS1_2_VERSION, TLS1_2_VERSION},
    {"tlsv1_3", TLS1_3_VERSION, TLS1_3_VERSION},
};

// The server's choice among the protocols the client offers: the first of its own list that
// the client has.
int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void* arg) {
  (void)arg;
  CtxExtra* x = extra_of(SSL_get_SSL_CTX(ssl));
  if (!x || !x->alpn) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, x->alpn, static_cast<unsigned>(x->alpn_len), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

// Server name indication on a server: the context registered for the name the client asked
// for replaces the default one (its certificate and key, its verification).
int on_servername(SSL* ssl, int* alert, void* arg) {
  (void)alert;
  (void)arg;
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  CtxExtra* x = extra_of(SSL_get_SSL_CTX(ssl));
  if (!name || !x) return SSL_TLSEXT_ERR_OK;
  for (int i = 0; i < x->nsni; i++) {
    if (strcasecmp(x->sni[i].name, name) == 0) {
      SSL_set_SSL_CTX(ssl, x->sni[i].ctx);
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_OK;  // the default certificate
}

int password_cb(char* buf, int size, int rwflag, void* userdata) {
  (void)rwflag;
  const char* pw = static_cast<const char*>(userdata);
  if (!pw) return 0;
  const size_t len = std::strlen(pw);
  if (len > static_cast<size_t>(size)) return 0;
  std::memcpy(buf, pw, len);
  return static_cast<int>(len);
}

// Fills the context in box `b` (at the stack top's box, which frees it whatever happens) from
// the parameter table at `t`. Returns nullptr, or the message of a failure to load a file.
const char* configure(lua_State* L, int t, SSL_CTX* ctx, char* msg, size_t msgsize);

// Pushes a new tls{context} for the parameter table at `t`; on a failure pushes nil and the
// message instead. Raises on a malformed parameter.
int push_context(lua_State* L, int t) {
  t = lua_absindex(L, t);
  luaL_checktype(L, t, LUA_TTABLE);
  auto* b = static_cast<ContextBox*>(lua_newuserdatauv(L, sizeof(ContextBox), 0));
  b->ctx = nullptr;
  luaL_setmetatable(L, kContext);  // __gc armed before anything is allocated
  const int box = lua_gettop(L);
  b->ctx = SSL_CTX_new(TLS_method());
  auto* x = b->ctx ? new (std::nothrow) CtxExtra() : nullptr;  // freed by extra_free
  if (!x || !SSL_CTX_set_ex_data(b->ctx, extra_index(), x)) {
    delete x;
    lua_settop(L, box - 1);
    lua_pushnil(L);
    lua_pushstring(L, "out of memory");
    return 2;
  }
  char msg[300];
  const char* err = configure(L, t, b->ctx, msg, sizeof msg);
  if (err) {
    // The box goes (its __gc frees the context); nil and the message take its place.
    lua_settop(L, box - 1);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_settop(L, box);
  return 1;
}

const char* configure(lua_State* L, int t, SSL_CTX* ctx, char* msg, size_t msgsize) {
  CtxExtra* x = extra_of(ctx);
  const char* mode = opt_string(L, t, "mode");
  if (mode && std::strcmp(mode, "server") == 0) {
    x->server = true;
  } else if (mode && std::strcmp(mode, "client") != 0) {
    luaL_error(L, "TLS parameter 'mode': \"client\" or \"server\" expected");
  }

  // Protocol versions: LuaSec's names, each naming exactly one version ("any": all of them).
  if (const char* proto = opt_string(L, t, "protocol")) {
    const NamedVersion* v = nullptr;
    for (const NamedVersion& p : kProtocols) {
      if (std::strcmp(p.name, proto) == 0) v = &p;
    }
    if (!v) luaL_error(L, "TLS parameter 'protocol': unknown protocol '%s'", proto);
    SSL_CTX_set_min_proto_version(ctx, v->min);
    SSL_CTX_set_max_proto_version(ctx, v->max);
  } else {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  }
  // Renegotiation is refused: a read would then have to write (and a write to read) while the
  // other direction may be busy. TLS 1.3 has none at all.
  uint64_t ops = SSL_OP_NO_RENEGOTIATION;
  each_string(L, t, "options", [&](const char* name) {
    const NamedOption* o = nullptr;
    for (const NamedOption& n : kOptions) {
      if (std::strcmp(n.name, name) == 0) o = &n;
    }
    if (!o) luaL_error(L, "TLS parameter 'options': unknown option '%s'", name);
    ops |= o->bits;
  });
  SSL_CTX_set_options(ctx, ops);
  SSL_CTX_set_read_ahead(ctx, 1);  // one recv() takes whatever is there, records or not

  if (const char* c = opt_string(L, t, "ciphers")) {
    if (!SSL_CTX_set_cipher_list(ctx, c)) return ssl_reason(msg, msgsize, "ciphers");
  }
  if (const char* c = opt_string(L, t, "ciphersuites")) {
    if (!SSL_CTX_set_ciphersuites(ctx, c)) return ssl_reason(msg, msgsize, "ciphersuites");
  }

  // Certificate and key (a server's, or a client's certificate).
  if (const char* pw = opt_string(L, t, "password")) {
    // The string stays alive as long as the parameter table: only used while loading below.
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<char*>(pw));
  }
  const char* cert = opt_string(L, t, "certificate");
  const char* key = opt_string(L, t, "key");
  if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    return ssl_reason(msg, msgsize, "error loading certificate");
  }
  if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    return ssl_reason(msg, msgsize, "error loading private key");
  }
  if (cert && key && SSL_CTX_check_private_key(ctx) != 1) {
    return ssl_reason(msg, msgsize, "private key does not match the certificate");
  }
  SSL_CTX_set_default_passwd_cb(ctx, nullptr);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);

  // Verification: LuaSec's flags; the trust store is cafile/capath, or the system's.
  int vflags = SSL_VERIFY_NONE;
  each_string(L, t, "verify", [&](const char* name) {
    if (std::strcmp(name, "none") == 0) {
    } else if (std::strcmp(name, "peer") == 0) {
      vflags |= SSL_VERIFY_PEER;
    } else if (std::strcmp(name, "fail_if_no_peer_cert") == 0) {
      vflags |= SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    } else if (std::strcmp(name, "client_once") == 0) {
      vflags |= SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    } else {
      luaL_error(L, "TLS parameter 'verify': unknown flag '%s'", name);
    }
  });
  SSL_CTX_set_verify(ctx, vflags, nullptr);
  x->verify = (vflags & SSL_VERIFY_PEER) != 0;
  const char* cafile = opt_string(L, t, "cafile");
  const char* capath = opt_string(L, t, "capath");
  if (cafile || capath) {
    if (SSL_CTX_load_verify_locations(ctx, cafile, capath) != 1) {
      return ssl_reason(msg, msgsize, "error loading CA locations");
    }
  } else if (x->verify && !x->server) {
    // OpenSSL's default paths, which SSL_CERT_FILE and SSL_CERT_DIR override.
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return ssl_reason(msg, msgsize, "error loading the system's CA certificates");
    }
  }
  if (x->server && cafile) {
    // A server that verifies clients names the CAs it accepts.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cafile)) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
  }
  lua_getfield(L, t, "depth");
  if (lua_isinteger(L, -1)) SSL_CTX_set_verify_depth(ctx, static_cast<int>(lua_tointeger(L, -1)));
  lua_pop(L, 1);

  // ALPN: the protocols a client offers, or a server accepts (first match in its order).
  size_t alpn_len = 0;
  each_string(L, t, "alpn", [&](const char* name) {
    const size_t n = std::strlen(name);
    if (n == 0 || n > 255) luaL_error(L, "TLS parameter 'alpn': names of 1 to 255 bytes");
    alpn_len += 1 + n;
  });
  if (alpn_len) {
    x->alpn = static_cast<unsigned char*>(std::malloc(alpn_len));  // freed in extra_free
    if (!x->alpn) return "out of memory";
    x->alpn_len = 0;
    each_string(L, t, "alpn", [&](const char* name) {
      const size_t n = std::strlen(name);
      if (x->alpn_len + 1 + n > alpn_len) return;  // the table changed meanwhile
      x->alpn[x->alpn_len++] = static_cast<unsigned char>(n);
      std::memcpy(x->alpn + x->alpn_len, name, n);
      x->alpn_len += n;
    });
    if (x->server) {
      SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
    } else if (SSL_CTX_set_alpn_protos(ctx, x->alpn, static_cast<unsigned>(x->alpn_len)) != 0) {
      return "out of memory";
    }
  }

  // A server's certificates by name: sni = { [name] = params, ... }.
  if (x->server && lua_getfield(L, t, "sni") == LUA_TTABLE) {
    const int sni = lua_gettop(L);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, sni)) {
      n++;
      lua_pop(L, 1);
    }
    x->sni = static_cast<CtxExtra::Sni*>(std::calloc(n ? n : 1, sizeof(CtxExtra::Sni)));
    if (!x->sni) return "out of memory";
    lua_pushnil(L);
    while (lua_next(L, sni)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TTABLE) {
        luaL_error(L, "TLS parameter 'sni': { [name] = parameters } expected");
      }
      // Each name gets a server context of its own (the mode is the parent's).
      lua_newtable(L);
      lua_pushnil(L);
      while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
      }
      lua_pushliteral(L, "server");
      lua_setfield(L, -2, "mode");
      lua_pushnil(L);
      lua_setfield(L, -2, "sni");
      // Stack: name, its parameters, the copy; then the child context, or nil and a message.
      if (push_context(L, -1) == 2) {
        std::snprintf(msg, msgsize, "sni '%s': %s", lua_tostring(L, -5), lua_tostring(L, -1));
        return msg;
      }
      if (x->nsni >= n) luaL_error(L, "TLS parameter 'sni' changed while it was read");
      SSL_CTX* child = static_cast<ContextBox*>(lua_touserdata(L, -1))->ctx;
      char* name = strdup(lua_tostring(L, -4));
      if (!name) return "out of memory";
      SSL_CTX_up_ref(child);
      x->sni[x->nsni].name = name;
      x->sni[x->nsni].ctx = child;
      x->nsni++;
      lua_pop(L, 3);  // the child, the copy, the parameters: the name stays for lua_next
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
  }
  return nullptr;
}

// tls.newcontext(params) -> context | nil, err
int tls_newcontext(lua_State* L) { return push_context(L, 1); }

// --- wrap --------------------------------------------------------------------------------------

bool is_ip(const char* name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

// tls.wrap(sock, context [, servername [, session [, checkname]]]) -> sock | nil, err
// Turns the connected tcp{client} `sock` into a tls{client} (the same object) whose bytes go
// through TLS with `context`; the handshake is dohandshake(). Bytes the socket had buffered
// belong to the TLS stream. A client sends `servername` as SNI (unless it is an address) and,
// when the context verifies the peer, checks the certificate against `checkname` (default:
// `servername`). `session` (from getsession) asks for a resumption.
int tls_wrap(lua_State* L) {
  Socket* s = check_socket(L, 1, kTcpClient, "tcp{client}");
  SSL_CTX* ctx = check_ctx(L, 2);
  const char* servername = luaL_optstring(L, 3, nullptr);
  size_t slen = 0;
  const char* session = lua_isnoneornil(L, 4) ? nullptr : luaL_checklstring(L, 4, &slen);
  const char* checkname = luaL_optstring(L, 5, servername);
  if (s->closed || s->fd < 0) return push_error(L, kIoClosed);
  if (s->reading.busy() || s->writing.busy()) {
    return luaL_error(L, "wrap: the socket has an operation in progress");
  }
  CtxExtra* x = extra_of(ctx);
  const bool server = x && x->server;
  const char* why = nullptr;
  TlsSession* t = tls_new(s, ctx, server, &why);
  if (!t) return push_error(L, ENOMEM);
  s->tls = t;  // freed by close_socket from now on
  s->pending = 0;
  set_class(L, 1, kClient);
  if (!server) {
    if (servername && !is_ip(servername)) (void)SSL_set_tlsext_host_name(t->ssl, servername);
    if (x && x->verify && checkname) {
      if (is_ip(checkname)) {
        (void)X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), checkname);
      } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        (void)SSL_set1_host(t->ssl, checkname);
      }
    }
    if (session) {
      const auto* p = reinterpret_cast<const unsigned char*>(session);
      if (SSL_SESSION* sess = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(slen))) {
        (void)SSL_set_session(t->ssl, sess);
        SSL_SESSION_free(sess);
      }
      ERR_clear_error();
    }
  }
  lua_settop(L, 1);
  return 1;
}

// --- the tls{client} methods -------------------------------------------------------------------

Socket* check_tls(lua_State* L) { return check_socket(L, 1, kTlsClient, kClient); }

int handshake_failed(lua_State* L, Socket* s, int err) {
  release(L, s, s->writing);
  lua_pushnil(L);
  lua_pushstring(L, err == kTlsFailed && s->tls ? s->tls->message : io_error(err));
  return 2;
}

int handshake_k(lua_State* L, int status, lua_KContext ctx) {
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  int err = status == LUA_YIELD ? resume_status(L, s->sr) : kIoDone;
  const loop::Deadline d(s->tm, s->wr_start);
  while (err == kIoDone) {
    if (s->closed || !s->tls || s->fd < 0) {
      err = kIoClosed;
      break;
    }
    err = tls_handshake(s);
    if (err == kIoDone) {
      release(L, s, s->writing);
      lua_pushboolean(L, 1);
      return 1;
    }
    if (err != kTlsWantRead && err != kTlsWantWrite) break;
    err = wait_fd(L, s, err == kTlsWantRead ? FdWatch::kRead : FdWatch::kWrite, d, "handshake");
    if (err == kYield) return loop::yield(L, s->sr->rt(), ctx, handshake_k);
  }
  return handshake_failed(L, s, err);
}

int handshake_begin(lua_State* L, Socket* s, double start) {
  s->wr_start = start;
  return handshake_k(L, LUA_OK, 0);
}

int handshake_turn_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* s = static_cast<Socket*>(lua_touserdata(L, 1));
  const int st = turn_status(L, s);
  if (st != kIoDone) return push_error(L, st);
  if (s->tls && s->tls->handshaken) {
    release(L, s, s->writing);
    lua_pushboolean(L, 1);
    return 1;
  }
  return handshake_begin(L, s, ctx_start(ctx));
}

// tls:dohandshake() -> true | nil, err
// Yields in a task until the handshake is done; blocks in poll(2) elsewhere; the socket's
// timeouts apply. A second call returns true at once.
int tls_dohandshake(lua_State* L) {
  Socket* s = check_tls(L);
  lua_settop(L, 1);
  if (s->closed || !s->tls) return push_error(L, kIoClosed);
  if (s->tls->handshaken) {
    lua_pushboolean(L, 1);
    return 1;
  }
  const double start = call_start(s);
  const int st = claim(L, s, s->writing, start, "handshake");
  if (st == kYield) return loop::yield(L, s->sr->rt(), start_ctx(start), handshake_turn_k);
  if (st != kIoDone) return push_error(L, st);
  return handshake_begin(L, s, start);
}

constexpr const char* kNotYet = "handshake not done";

bool before_handshake(const Socket* s) { return s->tls && !s->tls->handshaken; }

int tls_receive(lua_State* L) {
  Socket* s = check_tls(L);
  if (before_handshake(s)) {
    lua_settop(L, 3);
    if (lua_type(L, 3) != LUA_TSTRING) {
      lua_pushliteral(L, "");
      lua_replace(L, 3);
    }
    lua_pushnil(L);
    lua_pushstring(L, kNotYet);
    lua_pushvalue(L, 3);
    return 3;
  }
  return tls_stream_receive(L, s);
}

int tls_headers(lua_State* L) {
  Socket* s = check_tls(L);
  if (before_handshake(s)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return stream_take_headers(L, s);
}

int tls_receiveany(lua_State* L) {
  Socket* s = check_tls(L);
  if (before_handshake(s)) {
    lua_pushnil(L);
    lua_pushstring(L, kNotYet);
    lua_pushliteral(L, "");
    return 3;
  }
  return tls_stream_receive_any(L, s);
}

// A send before the handshake is done waits its turn behind a handshake in progress, or makes
// the handshake itself (SSL_write does): only receives are refused before it, so that no reader
// ever waits on the descriptor while a handshake does.
int tls_send(lua_State* L) { return tls_stream_send(L, check_tls(L)); }

int tls_close(lua_State* L) { return common_close(L, check_tls(L)); }

int tls_dirty(lua_State* L) {
  Socket* s = check_tls(L);
  lua_pushboolean(L, !s->buf.empty() || tls_pending(s));
  return 1;
}

int tls_shutdown(lua_State* L) {
  static const char* const kHow[] = {"receive", "send", "both", nullptr};
  Socket* s = check_tls(L);
  const int how = luaL_checkoption(L, 2, "both", kHow);
  if (how != SHUT_RD) tls_close_notify(s);
  (void)::shutdown(s->fd, how);
  return push_ok(L);
}

// Formats an ASN1 time as "YYYY-MM-DD hh:mm:ss UTC" and as seconds since the epoch.
void push_time(lua_State* L, const ASN1_TIME* at, const char* text_key, const char* num_key) {
  struct tm tm {};
  if (!at || ASN1_TIME_to_tm(at, &tm) != 1) return;
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  lua_pushstring(L, buf);
  lua_setfield(L, -2, text_key);
  lua_pushinteger(L, static_cast<lua_Integer>(timegm(&tm)));
  lua_setfield(L, -2, num_key);
}

// tls:getpeercertificate() -> { subject, issuer, notbefore, notafter, ..., pem } | nil, err
int tls_getpeercertificate(lua_State* L) {
  Socket* s = check_tls(L);
  X509* cert = s->tls ? SSL_get0_peer_certificate(s->tls->ssl) : nullptr;
  if (!cert) {
    lua_pushnil(L);
    lua_pushstring(L, s->tls ? "no peer certificate" : "closed");
    return 2;
  }
  // Everything OpenSSL allocates is copied out and freed before Lua gets to allocate (and
  // perhaps raise): the alternative names into a fixed table on the stack, the PEM text into
  // a Lua buffer sized beforehand.
  constexpr int kMaxNames = 64;
  char names[kMaxNames][128];
  int nnames = 0;
  if (auto* gens = static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(gens) && nnames < kMaxNames; i++) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens, i);
      if (g->type == GEN_DNS) {
        const ASN1_STRING* v = g->d.dNSName;
        std::snprintf(names[nnames++], sizeof names[0], "DNS:%.*s", ASN1_STRING_length(v),
                      reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)));
      } else if (g->type == GEN_IPADD) {
        const ASN1_STRING* v = g->d.iPAddress;
        char ip[INET6_ADDRSTRLEN] = "?";
        const int len = ASN1_STRING_length(v);
        if (len == 4 || len == 16) {
          inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(v), ip, sizeof ip);
        }
        std::snprintf(names[nnames++], sizeof names[0], "IP:%s", ip);
      }
    }
    GENERAL_NAMES_free(gens);
  }
  char subject[512];
  char issuer[512];
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
  X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof issuer);
  char serial[128] = "";
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      std::snprintf(serial, sizeof serial, "%s", hex);
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  const int der = i2d_X509(cert, nullptr);

  lua_createtable(L, 0, 9);
  lua_pushstring(L, subject);
  lua_setfield(L, -2, "subject");
  lua_pushstring(L, issuer);
  lua_setfield(L, -2, "issuer");
  lua_pushstring(L, serial);
  lua_setfield(L, -2, "serial");
  push_time(L, X509_get0_notBefore(cert), "notbefore", "notbefore_time");
  push_time(L, X509_get0_notAfter(cert), "notafter", "notafter_time");
  lua_createtable(L, nnames, 0);
  for (int i = 0; i < nnames; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "altnames");
  if (der > 0) {
    // Base64 of the DER (4 bytes for 3), a newline per 64 characters, the two armour lines.
    const size_t bound =
        static_cast<size_t>(der) / 3 * 4 + 4 + static_cast<size_t>(der) / 48 + 2 + 64;
    luaL_Buffer b;
    char* out = luaL_buffinitsize(L, &b, bound);
    size_t got = 0;
    if (BIO* mem = BIO_new(BIO_s_mem())) {
      if (PEM_write_bio_X509(mem, cert) == 1) {
        const int n = BIO_read(mem, out, static_cast<int>(bound));
        got = n > 0 ? static_cast<size_t>(n) : 0;
      }
      BIO_free(mem);
    }
    ERR_clear_error();
    luaL_pushresultsize(&b, got);
    lua_setfield(L, -2, "pem");
  }
  return 1;
}

// tls:getpeerverification() -> true | false, { message }
int tls_getpeerverification(lua_State* L) {
  Socket* s = check_tls(L);
  if (!s->tls) return push_error(L, kIoClosed);
  const long v = SSL_get_verify_result(s->tls->ssl);
  const bool has_cert = SSL_get0_peer_certificate(s->tls->ssl) != nullptr;
  if (v == X509_V_OK && has_cert) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_createtable(L, 1, 0);
  lua_pushstring(L, has_cert ? X509_verify_cert_error_string(v) : "no peer certificate");
  lua_rawseti(L, -2, 1);
  return 2;
}

// tls:info([field]) -> { protocol, cipher, bits, alpn, resumed, servername } | that field
int tls_info(lua_State* L) {
  Socket* s = check_tls(L);
  if (!s->tls) return push_error(L, kIoClosed);
  SSL* ssl = s->tls->ssl;
  const char* field = luaL_optstring(L, 2, nullptr);
  lua_createtable(L, 0, 6);
  if (s->tls->handshaken) {
    lua_pushstring(L, SSL_get_version(ssl));
    lua_setfield(L, -2, "protocol");
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
    if (c) {
      lua_pushstring(L, SSL_CIPHER_get_name(c));
      lua_setfield(L, -2, "cipher");
      int alg = 0;
      lua_pushinteger(L, SSL_CIPHER_get_bits(c, &alg));
      lua_setfield(L, -2, "bits");
    }
    const unsigned char* alpn = nullptr;
    unsigned alen = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    if (alen) {
      lua_pushlstring(L, reinterpret_cast<const char*>(alpn), alen);
      lua_setfield(L, -2, "alpn");
    }
    lua_pushboolean(L, SSL_session_reused(ssl));
    lua_setfield(L, -2, "resumed");
  }
  if (const char* sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
    lua_pushstring(L, sn);
    lua_setfield(L, -2, "servername");
  }
  lua_pushstring(L, s->tls->server ? "server" : "client");
  lua_setfield(L, -2, "mode");
  if (field) lua_getfield(L, -1, field);
  return 1;
}

// tls:getsession() -> string | nil, err: the session, for params.session on a later wrap
// (resumption). With TLS 1.3 it exists once the server's ticket arrived, with its first data.
int tls_getsession(lua_State* L) {
  Socket* s = check_tls(L);
  if (!s->tls) return push_error(L, kIoClosed);
  // Not a reference of our own (get0-like): nothing to free if a Lua allocation raises.
  SSL_SESSION* sess = SSL_get_session(s->tls->ssl);
  if (!sess || !SSL_SESSION_is_resumable(sess)) {
    lua_pushnil(L);
    lua_pushliteral(L, "no resumable session");
    return 2;
  }
  const int len = i2d_SSL_SESSION(sess, nullptr);
  auto* box = static_cast<unsigned char*>(lua_newuserdatauv(L, len > 0 ? len : 1, 0));
  unsigned char* p = box;
  const int n = len > 0 ? i2d_SSL_SESSION(sess, &p) : 0;
  if (n <= 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "no resumable session");
    return 2;
  }
  lua_pushlstring(L, reinterpret_cast<const char*>(box), static_cast<size_t>(n));
  return 1;
}

int tls_getfd(lua_State* L) { return common_getfd(L, check_tls(L)); }
int tls_getfamily(lua_State* L) { return common_getfamily(L, check_tls(L)); }
int tls_settimeout(lua_State* L) { return common_settimeout(L, check_tls(L)); }
int tls_gettimeout(lua_State* L) { return common_gettimeout(L, check_tls(L)); }
int tls_getsockname(lua_State* L) { return inet_getsockname(L, check_tls(L)); }
int tls_getpeername(lua_State* L) { return inet_getpeername(L, check_tls(L)); }
int tls_getoption(lua_State* L) { return dispatch_option(L, check_tls(L), kTcpGetOptions); }
int tls_setoption(lua_State* L) { return dispatch_option(L, check_tls(L), kTcpSetOptions); }
int tls_getstats(lua_State* L) { return common_getstats(L, check_tls(L)); }
int tls_setstats(lua_State* L) { return common_setstats(L, check_tls(L)); }

const luaL_Reg kMethods[] = {
    {"close", tls_close},
    {"dirty", tls_dirty},
    {"dohandshake", tls_dohandshake},
    {"getfamily", tls_getfamily},
    {"getfd", tls_getfd},
    {"getoption", tls_getoption},
    {"getpeercertificate", tls_getpeercertificate},
    {"getpeername", tls_getpeername},
    {"getpeerverification", tls_getpeerverification},
    {"getsession", tls_getsession},
    {"getsockname", tls_getsockname},
    {"getstats", tls_getstats},
    {"gettimeout", tls_gettimeout},
    {"info", tls_info},
    {"receive", tls_receive},
    {"receiveany", tls_receiveany},
    {"_headers", tls_headers},
    {"send", tls_send},
    {"setoption", tls_setoption},
    {"setstats", tls_setstats},
    {"settimeout", tls_settimeout},
    {"shutdown", tls_shutdown},
    {nullptr, nullptr},
};

const char* const kGroups[] = {"tls{any}", "select{able}", nullptr};
const lua::ClassSpec kClasses[] = {{kClient, kGroups}};

}  // namespace

// Registers tls{client} and tls{context} and sets `tls` (newcontext, wrap) in the namespace
// table at `ns`; `rt` is the runtime handle, every function's upvalue.
void open_tls(lua_State* L, int ns, int rt) {
  lua::register_classes(L, kClasses, 1, kMethods, kSocketMetamethods, rt);
  // The BIO method lives as long as this state's module: an anchor in the registry, made
  // before any socket, so collected after every one of them when the state closes.
  tls_retain();
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, [](lua_State*) -> int {
    tls_release();
    return 0;
  });
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "uvsocket.tls.anchor");
  luaL_newmetatable(L, kContext);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, lua::class_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_newtable(L);
  const luaL_Reg funcs[] = {
      {"newcontext", tls_newcontext},
      {"wrap", tls_wrap},
      {nullptr, nullptr},
  };
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "_OPENSSL");
  lua_setfield(L, ns, "_tls");
}

}  // namespace uvs::socket
