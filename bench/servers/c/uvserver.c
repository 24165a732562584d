/* uvserver.c: the C reference server of uvsocket's benchmark suite (bench/, issue 6): what
 * plain libuv does with the same work, the practical limit the Lua servers are compared with.
 *
 *   uvserver echo  PORT [HOST]   line echo: every complete line goes back as it came
 *   uvserver block PORT [HOST]   byte echo for the bulk scenarios; half-closes after EOF
 *   uvserver http  PORT [HOST]   HTTP/1.1 keep-alive "hello" server
 *   uvserver ws    PORT [HOST]   WebSocket echo: the opening handshake, then every message back
 *                                (unfragmented frames up to 64 KiB; pings answered)
 *
 * Written the way a careful libuv programmer would: one 64 KiB read buffer shared by all
 * connections (reads are handled before the next one), uv_try_write first and a queued
 * uv_write only for the remainder, no buffer held by an idle connection, and reading paused
 * while more than 1 MiB waits to be written. Listens on loopback (127.0.0.1 unless HOST says
 * otherwise) and runs until killed.
 */
#define _GNU_SOURCE /* memmem */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum mode { MODE_ECHO, MODE_BLOCK, MODE_HTTP, MODE_WS };

#define HIGH_WATER (1u << 20)

static const char kHello[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";

typedef struct {
  uv_tcp_t tcp;
  char* pending; /* bytes of an incomplete line or request, NULL when none */
  size_t pending_len;
  int paused;      /* reading stopped until the write queue drains */
  int close_after; /* http: "Connection: close" seen */
  int eof;         /* the client finished sending */
  int upgraded;    /* ws: the handshake is done */
} client_t;

typedef struct {
  uv_write_t req;
  client_t* client;
  size_t len;
  char data[];
} write_req_t;

static enum mode mode;
static uv_loop_t* loop;
static char read_buf[1 << 16]; /* every read is handled before the next one starts */

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);

static void on_close(uv_handle_t* h) {
  client_t* c = h->data;
  free(c->pending);
  free(c); /* allocated in on_connection */
}

static void close_client(client_t* c) {
  if (!uv_is_closing((uv_handle_t*)&c->tcp)) uv_close((uv_handle_t*)&c->tcp, on_close);
}

static void on_shutdown(uv_shutdown_t* req, int status) {
  (void)status;
  close_client(req->handle->data);
  free(req); /* allocated in finish() */
}

/* The client is done (EOF, or "Connection: close"): close once queued writes are out. */
static void finish(client_t* c) {
  uv_shutdown_t* req = malloc(sizeof *req); /* freed in on_shutdown */
  if (!req || uv_shutdown(req, (uv_stream_t*)&c->tcp, on_shutdown) != 0) {
    free(req);
    close_client(c);
  }
}

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_write(uv_write_t* w, int status) {
  write_req_t* req = (write_req_t*)w;
  client_t* c = req->client;
  free(req); /* allocated in send_bytes */
  if (status < 0) {
    close_client(c);
    return;
  }
  if (c->paused && c->tcp.write_queue_size < HIGH_WATER / 2 && !c->eof) {
    c->paused = 0;
    uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
  }
}

/* Sends len bytes: directly when the socket takes them, else queued from a copy. */
static int send_bytes(client_t* c, const char* data, size_t len) {
  if (len == 0) return 0;
  if (c->tcp.write_queue_size == 0) {
    int n = uv_try_write((uv_stream_t*)&c->tcp, &(uv_buf_t){.base = (char*)data, .len = len}, 1);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
    } else if (n != UV_EAGAIN) {
      return n;
    }
    if (len == 0) return 0;
  }
  write_req_t* req = malloc(sizeof *req + len); /* freed in on_write */
  if (!req) return UV_ENOMEM;
  req->client = c;
  req->len = len;
  memcpy(req->data, data, len);
  uv_buf_t b = uv_buf_init(req->data, (unsigned)len);
  int r = uv_write(&req->req, (uv_stream_t*)&c->tcp, &b, 1, on_write);
  if (r != 0) {
    free(req);
    return r;
  }
  if (c->tcp.write_queue_size > HIGH_WATER && !c->paused) {
    c->paused = 1;
    uv_read_stop((uv_stream_t*)&c->tcp);
  }
  return 0;
}

/* Keeps data[0..len) for the next read (replacing what was kept). */
static int keep(client_t* c, const char* data, size_t len) {
  if (len == 0) {
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    return 0;
  }
  char* p = malloc(len); /* freed in keep() or on_close */
  if (!p) return UV_ENOMEM;
  memcpy(p, data, len);
  free(c->pending);
  c->pending = p;
  c->pending_len = len;
  return 0;
}

/* Joins what was kept with the new bytes; *owned is set when the result must be freed. */
static char* joined(client_t* c, const char* data, size_t len, size_t* out_len, int* owned) {
  *owned = 0;
  *out_len = len;
  if (!c->pending) return (char*)data;
  char* all = malloc(c->pending_len + len);
  if (!all) return NULL;
  memcpy(all, c->pending, c->pending_len);
  memcpy(all + c->pending_len, data, len);
  *out_len = c->pending_len + len;
  *owned = 1;
  return all;
}

/* Line echo: everything up to the last newline goes back; the rest waits. */
static int handle_echo(client_t* c, const char* data, size_t len) {
  size_t n;
  int owned;
  char* all = joined(c, data, len, &n, &owned);
  if (!all) return UV_ENOMEM;
  size_t end = n;
  while (end > 0 && all[end - 1] != '\n')
    end--;
  int r = send_bytes(c, all, end);
  if (r == 0) r = keep(c, all + end, n - end);
  if (owned) free(all);
  return r;
}

static int has_close_header(const char* req, size_t len) {
  static const char kWanted[] = "connection: close";
  const size_t wl = sizeof kWanted - 1;
  for (size_t i = 0; i + wl <= len; i++) {
    if (i > 0 && req[i - 1] != '\n') continue;
    size_t j = 0;
    while (j < wl && (req[i + j] | 0x20) == (kWanted[j] | 0x20))
      j++;
    if (j == wl) return 1;
  }
  return 0;
}

/* HTTP: one response per complete request head (pipelining works too). */
static int handle_http(client_t* c, const char* data, size_t len) {
  size_t n;
  int owned;
  char* all = joined(c, data, len, &n, &owned);
  if (!all) return UV_ENOMEM;
  size_t start = 0, count = 0;
  for (;;) {
    const char* end = memmem(all + start, n - start, "\r\n\r\n", 4);
    if (!end) break;
    size_t head_end = (size_t)(end - all) + 4;
    if (has_close_header(all + start, head_end - start)) c->close_after = 1;
    start = head_end;
    count++;
    if (c->close_after) break;
  }
  int r = 0;
  if (count == 1) {
    r = send_bytes(c, kHello, sizeof kHello - 1);
  } else if (count > 1) {
    size_t one = sizeof kHello - 1;
    char* out = malloc(one * count);
    if (!out) {
      r = UV_ENOMEM;
    } else {
      for (size_t i = 0; i < count; i++)
        memcpy(out + i * one, kHello, one);
      r = send_bytes(c, out, one * count);
      free(out);
    }
  }
  if (r == 0) r = keep(c, all + start, c->close_after ? 0 : n - start);
  if (owned) free(all);
  return r;
}

/* ---- WebSocket ---------------------------------------------------------------------------- */

/* SHA-1 (FIPS 180-4) of a short message, for the handshake's accept key. */
static void sha1(const unsigned char* msg, size_t len, unsigned char out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  size_t total = ((len + 8) / 64 + 1) * 64;
  unsigned char* m = calloc(1, total);
  if (!m) abort();
  memcpy(m, msg, len);
  m[len] = 0x80;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++)
    m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
  for (size_t off = 0; off < total; off += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
      w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
             (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
    for (int i = 16; i < 80; i++) {
      uint32_t x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
      w[i] = x << 1 | x >> 31;
    }
    uint32_t a = h[0], b = h[1], cc = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
      uint32_t f, k;
      if (i < 20)
        f = (b & cc) | (~b & d), k = 0x5A827999;
      else if (i < 40)
        f = b ^ cc ^ d, k = 0x6ED9EBA1;
      else if (i < 60)
        f = (b & cc) | (b & d) | (cc & d), k = 0x8F1BBCDC;
      else
        f = b ^ cc ^ d, k = 0xCA62C1D6;
      uint32_t t = (a << 5 | a >> 27) + f + e + k + w[i];
      e = d, d = cc, cc = b << 30 | b >> 2, b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += cc, h[3] += d, h[4] += e;
  }
  free(m);
  for (int i = 0; i < 20; i++)
    out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char* in, size_t len, char* out) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < len ? in[i + 2] : 0);
    out[o++] = t[v >> 18 & 63];
    out[o++] = t[v >> 12 & 63];
    out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
    out[o++] = i + 2 < len ? t[v & 63] : '=';
  }
  out[o] = 0;
}

/* The handshake: waits for the whole head, answers 101 with the accept key. */
static int ws_handshake(client_t* c, const char* all, size_t n, size_t* used) {
  const char* end = memmem(all, n, "\r\n\r\n", 4);
  if (!end) {
    *used = 0;
    return n > 16384 ? UV_EINVAL : 0;
  }
  *used = (size_t)(end + 4 - all);
  const char* k = memmem(all, *used, "Sec-WebSocket-Key: ", 19);
  if (!k) return UV_EINVAL;
  k += 19;
  const char* ke = memchr(k, '\r', (size_t)(end + 2 - k));
  if (!ke || ke - k > 64) return UV_EINVAL;
  unsigned char buf[128], digest[20];
  size_t kl = (size_t)(ke - k);
  memcpy(buf, k, kl);
  memcpy(buf + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
  sha1(buf, kl + 36, digest);
  char accept[32], head[256];
  base64(digest, 20, accept);
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                    accept);
  c->upgraded = 1;
  return send_bytes(c, head, (size_t)hl);
}

/* Frames: each complete client frame goes back unmasked (text/binary echoed, ping answered
 * with pong, close answered and the connection finished); an incomplete one waits. */
static int handle_ws(client_t* c, const char* data, size_t len) {
  size_t n;
  int owned;
  char* all = joined(c, data, len, &n, &owned);
  if (!all) return UV_ENOMEM;
  size_t at = 0;
  int r = 0;
  if (!c->upgraded) {
    size_t used;
    r = ws_handshake(c, all, n, &used);
    at = used;
    if (r == 0 && !c->upgraded) {
      r = keep(c, all, n);
      if (owned) free(all);
      return r;
    }
  }
  char out[1 << 16];
  size_t o = 0;
  while (r == 0 && n - at >= 2) {
    const unsigned char* f = (const unsigned char*)all + at;
    size_t plen = f[1] & 127, hl = 2;
    if (plen == 126) {
      if (n - at < 4) break;
      plen = (size_t)f[2] << 8 | f[3];
      hl = 4;
    } else if (plen == 127) {
      r = UV_EINVAL; /* over 64 KiB: not in this benchmark */
      break;
    }
    if (!(f[1] & 0x80)) {
      r = UV_EINVAL;
      break;
    }
    if (n - at < hl + 4 + plen) break;
    const unsigned char* mask = f + hl;
    int op = f[0] & 15;
    if (o + plen + 4 > sizeof out) {
      r = send_bytes(c, out, o);
      o = 0;
      if (r != 0) break;
    }
    out[o++] = (char)(0x80 | (op == 9 ? 10 : op));
    if (plen < 126) {
      out[o++] = (char)plen;
    } else {
      out[o++] = 126;
      out[o++] = (char)(plen >> 8);
      out[o++] = (char)plen;
    }
    for (size_t i = 0; i < plen; i++)
      out[o++] = (char)(f[hl + 4 + i] ^ mask[i & 3]);
    at += hl + 4 + plen;
    if (op == 8) c->close_after = 1;
  }
  if (r == 0) r = send_bytes(c, out, o);
  if (r == 0) r = keep(c, all + at, c->close_after ? 0 : n - at);
  if (owned) free(all);
  return r;
}

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  client_t* c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    if (nread == UV_EOF) {
      c->eof = 1;
      uv_read_stop(s);
      finish(c);
    } else {
      close_client(c);
    }
    return;
  }
  int r;
  switch (mode) {
    case MODE_ECHO:
      r = handle_echo(c, buf->base, (size_t)nread);
      break;
    case MODE_BLOCK:
      r = send_bytes(c, buf->base, (size_t)nread);
      break;
    case MODE_WS:
      r = handle_ws(c, buf->base, (size_t)nread);
      if (r == 0 && c->close_after) {
        uv_read_stop(s);
        finish(c);
      }
      break;
    default:
      r = handle_http(c, buf->base, (size_t)nread);
      if (r == 0 && c->close_after) {
        uv_read_stop(s);
        finish(c);
      }
      break;
  }
  if (r != 0) close_client(c);
}

static void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  client_t* c = calloc(1, sizeof *c); /* freed in on_close */
  if (!c) return;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0) {
    close_client(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t* h, int signum) {
  (void)signum;
  uv_stop(h->loop);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: uvserver echo|block|http|ws PORT [HOST]\n");
    return 2;
  }
  if (strcmp(argv[1], "echo") == 0) {
    mode = MODE_ECHO;
  } else if (strcmp(argv[1], "block") == 0) {
    mode = MODE_BLOCK;
  } else if (strcmp(argv[1], "http") == 0) {
    mode = MODE_HTTP;
  } else if (strcmp(argv[1], "ws") == 0) {
    mode = MODE_WS;
  } else {
    fprintf(stderr, "uvserver: unknown mode %s\n", argv[1]);
    return 2;
  }
  const char* host = argc > 3 ? argv[3] : "127.0.0.1";
  signal(SIGPIPE, SIG_IGN); /* a client that goes away mid-write is an error, not a crash */
  loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  int r = uv_ip4_addr(host, atoi(argv[2]), &addr);
  if (r == 0) r = uv_tcp_init(loop, &server);
  if (r == 0) r = uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
  if (r == 0) r = uv_listen((uv_stream_t*)&server, 4096, on_connection);
  if (r != 0) {
    fprintf(stderr, "uvserver: %s\n", uv_strerror(r));
    return 1;
  }
  uv_signal_t sigterm, sigint;
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t*)&sigterm);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_unref((uv_handle_t*)&sigint);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
