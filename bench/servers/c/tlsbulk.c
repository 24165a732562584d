/* tlsbulk.c: the C OpenSSL reference of the TLS bulk scenario (bench/tls_bench.py).
 *
 *   tlsbulk server PORT CERT KEY   accepts one connection at a time; reads everything until
 *                                  the client's close_notify, then answers with one byte
 *   tlsbulk client PORT MB         sends MB MiB in 64 KiB writes, waits for the byte, prints
 *                                  "bytes=N seconds=S mbps=M"
 *
 * Plain blocking OpenSSL, one process per side: what a C program does at best with the same
 * library, record size and cipher (TLS 1.3, the OpenSSL default suite). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char* what) {
  fprintf(stderr, "tlsbulk: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

static _Noreturn void serve(int port, const char* cert, const char* key) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
    die("server context");
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 16)) die("listen");
  printf("listening port %d\n", port);
  fflush(stdout);
  static char buf[1 << 16];
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) continue;
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) == 1) {
      while (SSL_read(ssl, buf, sizeof buf) > 0) {
      }
      SSL_write(ssl, "k", 1);
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(c);
  }
}

static int client(int port, long mb) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, (struct sockaddr*)&a, sizeof a)) die("connect");
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, s);
  if (SSL_connect(ssl) != 1) die("handshake");
  static char buf[1 << 16];
  memset(buf, 'x', sizeof buf);
  double t0 = now();
  long total = mb << 20, sent = 0;
  while (sent < total) {
    int n = SSL_write(ssl, buf, sizeof buf);
    if (n <= 0) die("write");
    sent += n;
  }
  SSL_shutdown(ssl);
  char k;
  SSL_read(ssl, &k, 1);
  double secs = now() - t0;
  printf("bytes=%ld seconds=%.3f mbps=%.1f\n", sent, secs, sent / secs / 1048576.0);
  return 0;
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 5 && !strcmp(argv[1], "server")) serve(atoi(argv[2]), argv[3], argv[4]);
  if (argc == 4 && !strcmp(argv[1], "client")) return client(atoi(argv[2]), atol(argv[3]));
  fprintf(stderr, "usage: tlsbulk server PORT CERT KEY | tlsbulk client PORT MB\n");
  return 2;
}
