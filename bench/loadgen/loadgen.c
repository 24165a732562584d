/* loadgen.c: the load generator of uvsocket's benchmark suite (bench/, issue 6).
 *
 * One single-threaded epoll process, so that on a two-core machine the server under test keeps
 * the other core. Modes:
 *   echo    C connections each send an S-byte line and wait for its echo, again and again
 *           (closed loop); reports requests/s, p50/p99/p999 latency, connections established and
 *           clients that got no reply during the measurement.
 *   hold    C connections each send one line, get its echo (so the server surely holds a
 *           connection object and, for uvsocket, a task), then stay idle for D seconds; reports
 *           the server's RSS growth per connection, CPU time and wake-ups while idle. With -s 0
 *           the connections never send anything.
 *   bulk    C connections stream data through a byte echo (MB/s). With -b N each connection
 *           sends N bytes, shuts down its sending side, reads the echo until EOF and starts over
 *           on a new connection (what a receive("*a") server needs).
 *   accept  C concurrent slots each connect, send one line, read the echo and close, then start
 *           over: new connections per second.
 *
 * Every run is bounded in time: an alarm ends the process after the connect, warm-up and
 * measurement budgets plus a margin, whatever the server does. Source addresses are spread
 * over 127.0.0.1..127.0.0.N (N from -a, or chosen from the connection count) when one address
 * would not have enough ephemeral ports; a connect that fails with EADDRNOTAVAIL moves on to
 * the next address.
 *
 * When given the server's pid (-P), the server's CPU time (the run time of all its threads, from
 * the schedstat file of each thread under /proc/PID/task), RSS and context switches are sampled
 * at the start and end of the measurement. The result is one line of key=value pairs on stdout;
 * progress goes to stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { M_ECHO, M_HOLD, M_BULK, M_ACCEPT, M_WS };
static const char* const kModeNames[] = {"echo", "hold", "bulk", "accept", "ws"};

enum state {
  ST_IDLE,       /* no descriptor */
  ST_CONNECTING, /* connect() in progress */
  ST_READY,      /* connected, nothing to do yet */
  ST_SEND,       /* writing a request (line) */
  ST_RECV,       /* waiting for the reply */
  ST_DONE,       /* hold: verified, idle until the end */
  ST_STREAM,     /* bulk: sending and receiving */
  ST_DRAIN,      /* bulk transfer: all sent, write side shut, reading until EOF */
  ST_DEAD,       /* failed or closed by the server */
  ST_HANDSHAKE,  /* ws: the upgrade request sent, waiting for the 101 head */
};

enum phase { P_CONNECT, P_VERIFY, P_SETTLE, P_WARMUP, P_MEASURE, P_DONE };

typedef struct {
  int fd;
  uint8_t state;
  uint8_t ev; /* the epoll events registered, 0 if none */
  uint16_t addr;
  uint32_t out; /* echo: bytes of the request written */
  uint32_t in;  /* echo: bytes of the reply read */
  uint64_t t0;  /* ns: start of the request (accept: start of the connect) */
  uint64_t replies;
  uint64_t replies_win;
  uint64_t sent; /* bulk: bytes sent on this connection (or transfer) */
  uint64_t recvd;
} conn_t;

static struct {
  int mode;
  const char* host;
  int port;
  int conns;
  int size;
  double duration;
  double warmup;
  int naddr;
  pid_t pid;
  double connect_timeout;
  long long transfer;
  long long window;
  int parallel;
  double limit;
  double settle;
} cfg = {
    .mode = M_ECHO,
    .host = "127.0.0.1",
    .port = 0,
    .conns = 1,
    .size = 64,
    .duration = 5.0,
    .warmup = 1.0,
    .naddr = 0,
    .pid = 0,
    .connect_timeout = 20.0,
    .transfer = 0,
    .window = 4 << 20,
    .parallel = 256,
    .limit = 0.0,
    .settle = 0.5,
};

static conn_t* conns;
static int ep = -1;
static struct sockaddr_in target;
static char* request; /* the echo request line: size bytes ending in '\n' */
/* Bytes of a request and of its reply: the line both ways, or (ws) a masked text frame of
 * `size` payload bytes out and the unmasked frame back. */
static uint32_t req_len, rep_len;
static const char kUpgrade[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
static char scratch[1 << 16]; /* receive buffer shared by all connections */
static char pattern[1 << 16]; /* bulk payload */
static int phase = P_CONNECT;
static uint64_t t_start, t_win0, t_win1;

/* Counters. */
static long established, connect_errors, io_errors, peer_closed, bad_replies, verified;
static long connecting, next_open, addr_rotor, transfers_win, conns_win;
static uint64_t bytes_win, requests_win;

/* Latency samples of the measurement window, in microseconds. */
static uint32_t* lat;
static size_t lat_n, lat_cap;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char* what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "loadgen: time limit reached, giving up\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(3);
}

static void record_latency(uint64_t ns) {
  if (lat_n == lat_cap) {
    lat_cap = lat_cap ? lat_cap * 2 : 1 << 16;
    lat = realloc(lat, lat_cap * sizeof *lat);
    if (!lat) die("realloc");
  }
  uint64_t us = ns / 1000;
  lat[lat_n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void* a, const void* b) {
  uint32_t x = *(const uint32_t*)a, y = *(const uint32_t*)b;
  return x < y ? -1 : x > y;
}

/* The p-quantile (0 < p <= 1) of the sorted samples, in milliseconds; -1 without samples. */
static double quantile_ms(double p) {
  if (lat_n == 0) return -1.0;
  size_t i = (size_t)ceil(p * (double)lat_n);
  if (i > 0) i--;
  if (i >= lat_n) i = lat_n - 1;
  return lat[i] / 1000.0;
}

/* ---- the server's resource use, from /proc ------------------------------------------------- */

typedef struct {
  int ok;
  double cpu_s; /* run time of all its threads */
  long rss_kb;
  long hwm_kb;
  long ctxt; /* voluntary + involuntary context switches of all its threads */
} snap_t;

static long status_field(const char* path, const char* key) {
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  size_t klen = strlen(key);
  long v = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      v = strtol(line + klen + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

static snap_t snapshot(void) {
  snap_t s = {0};
  if (cfg.pid <= 0) return s;
  char path[128];
  snprintf(path, sizeof path, "/proc/%d/status", (int)cfg.pid);
  s.rss_kb = status_field(path, "VmRSS");
  s.hwm_kb = status_field(path, "VmHWM");
  if (s.rss_kb < 0) return s;
  snprintf(path, sizeof path, "/proc/%d/task", (int)cfg.pid);
  DIR* d = opendir(path);
  if (!d) return s;
  struct dirent* e;
  double ns = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[300];
    snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", (int)cfg.pid, e->d_name);
    FILE* f = fopen(p, "r");
    if (f) {
      unsigned long long run = 0;
      if (fscanf(f, "%llu", &run) == 1) ns += (double)run;
      fclose(f);
    }
    snprintf(p, sizeof p, "/proc/%d/task/%s/status", (int)cfg.pid, e->d_name);
    long v = status_field(p, "voluntary_ctxt_switches");
    long nv = status_field(p, "nonvoluntary_ctxt_switches");
    if (v > 0) s.ctxt += v;
    if (nv > 0) s.ctxt += nv;
  }
  closedir(d);
  s.cpu_s = ns / 1e9;
  s.ok = 1;
  return s;
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* ---- connections --------------------------------------------------------------------------- */

static void set_events(conn_t* c, uint32_t ev) {
  if (c->ev == ev) return;
  struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)(c - conns)};
  int op = c->ev ? (ev ? EPOLL_CTL_MOD : EPOLL_CTL_DEL) : EPOLL_CTL_ADD;
  if (epoll_ctl(ep, op, c->fd, &e) < 0) die("epoll_ctl");
  c->ev = (uint8_t)ev;
}

static void close_conn(conn_t* c, int new_state) {
  if (c->fd >= 0) close(c->fd); /* also leaves the epoll set */
  if (c->state == ST_CONNECTING) connecting--;
  c->fd = -1;
  c->ev = 0;
  c->state = (uint8_t)new_state;
}

static int window_open(uint64_t t) { return phase == P_MEASURE && t >= t_win0 && t < t_win1; }

/* Starts a non-blocking connect from the next source address. Returns 0, or -1 after counting
 * the failure. */
static int open_conn(conn_t* c) {
  int tries = cfg.naddr;
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) die("socket (raise ulimit -n)");
      die("socket");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->addr = (uint16_t)(addr_rotor++ % cfg.naddr);
    if (cfg.naddr > 1) {
      struct sockaddr_in src = {.sin_family = AF_INET};
      src.sin_addr.s_addr = htonl(0x7f000001u + c->addr);
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (bind(fd, (struct sockaddr*)&src, sizeof src) < 0) {
        close(fd);
        if (--tries > 0) continue;
        connect_errors++;
        c->state = ST_DEAD;
        return -1;
      }
    }
    c->fd = fd;
    c->ev = 0;
    c->t0 = now_ns();
    if (connect(fd, (struct sockaddr*)&target, sizeof target) == 0 || errno == EINPROGRESS) {
      c->state = ST_CONNECTING;
      connecting++;
      set_events(c, EPOLLOUT);
      return 0;
    }
    int err = errno;
    close(fd);
    c->fd = -1;
    if (err == EADDRNOTAVAIL && --tries > 0) continue;
    if (connect_errors < 5) fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
    connect_errors++;
    c->state = ST_DEAD;
    return -1;
  }
}

static void start_request(conn_t* c);
static void bulk_pump(conn_t* c);

/* Writes what is left of the echo request; then waits for the reply. */
static void send_request(conn_t* c) {
  while (c->out < req_len) {
    ssize_t n = send(c->fd, request + c->out, (size_t)req_len - c->out, MSG_NOSIGNAL);
    if (n > 0) {
      c->out += (uint32_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c->state = ST_SEND;
      set_events(c, EPOLLIN | EPOLLOUT);
      return;
    }
    io_errors++;
    close_conn(c, ST_DEAD);
    return;
  }
  c->state = ST_RECV;
  set_events(c, EPOLLIN);
}

static void start_request(conn_t* c) {
  c->out = 0;
  c->in = 0;
  if (cfg.mode != M_ACCEPT) c->t0 = now_ns();
  send_request(c);
}

static void on_connected(conn_t* c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  connecting--;
  if (err) {
    if (connect_errors < 5) fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
    connect_errors++;
    c->fd = (close(c->fd), -1);
    c->ev = 0;
    c->state = ST_DEAD;
    return;
  }
  established++;
  c->sent = c->recvd = 0;
  if (cfg.mode == M_ACCEPT) {
    start_request(c);
  } else if (cfg.mode == M_WS) {
    /* The upgrade request is short: one send. The 101 head is read in echo_readable. */
    if (send(c->fd, kUpgrade, sizeof kUpgrade - 1, MSG_NOSIGNAL) !=
        (ssize_t)(sizeof kUpgrade - 1)) {
      io_errors++;
      close_conn(c, ST_DEAD);
      return;
    }
    c->in = 0;
    c->state = ST_HANDSHAKE;
    set_events(c, EPOLLIN);
  } else if (cfg.mode == M_BULK && phase != P_CONNECT) {
    c->state = ST_STREAM;
    bulk_pump(c);
  } else {
    c->state = ST_READY;
    set_events(c, EPOLLIN); /* notices a server that closes early */
  }
}

/* A whole reply arrived. */
static void on_reply(conn_t* c, uint64_t t) {
  c->replies++;
  if (window_open(t)) {
    c->replies_win++;
    requests_win++;
    record_latency(t - c->t0);
  }
  switch (cfg.mode) {
    case M_ECHO:
    case M_WS:
      if (phase == P_DONE) {
        c->state = ST_READY;
      } else {
        start_request(c);
      }
      break;
    case M_HOLD:
      verified++;
      c->state = ST_DONE;
      break;
    case M_ACCEPT:
      if (window_open(t)) conns_win++;
      close_conn(c, ST_IDLE);
      if (phase != P_DONE) open_conn(c);
      break;
    default:
      break;
  }
}

static void echo_readable(conn_t* c) {
  for (;;) {
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n > 0 && c->state == ST_HANDSHAKE) {
      /* The whole head comes in one read on loopback, and nothing follows it before the first
       * request. */
      if (n < 12 || memcmp(scratch, "HTTP/1.1 101", 12) != 0 ||
          memcmp(scratch + n - 4, "\r\n\r\n", 4) != 0) {
        bad_replies++;
        close_conn(c, ST_DEAD);
        return;
      }
      c->state = ST_READY;
      if (phase == P_WARMUP || phase == P_MEASURE) start_request(c);
      return;
    }
    if (n > 0) {
      if (c->state != ST_RECV && c->state != ST_SEND) {
        bad_replies++; /* bytes nobody asked for */
        continue;
      }
      c->in += (uint32_t)n;
      if (c->in > rep_len) {
        bad_replies++;
        close_conn(c, ST_DEAD);
        return;
      }
      if (c->in == rep_len) {
        if (scratch[n - 1] != '\n') bad_replies++;
        on_reply(c, now_ns());
        return; /* level-triggered: anything more is reported again */
      }
      continue;
    }
    if (n == 0) {
      peer_closed++;
      close_conn(c, ST_DEAD);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    io_errors++;
    close_conn(c, ST_DEAD);
    return;
  }
}

/* ---- bulk ---------------------------------------------------------------------------------- */

static void bulk_done_transfer(conn_t* c) {
  if (c->recvd != c->sent) bad_replies++;
  if (window_open(now_ns())) transfers_win++;
  close_conn(c, ST_IDLE);
  if (phase != P_DONE) open_conn(c);
}

/* Sends as much as the window (stream) or the transfer size allows. */
static void bulk_pump(conn_t* c) {
  for (;;) {
    size_t want;
    if (cfg.transfer > 0) {
      if (c->sent >= (uint64_t)cfg.transfer) {
        if (c->state == ST_STREAM) {
          shutdown(c->fd, SHUT_WR);
          c->state = ST_DRAIN;
        }
        set_events(c, EPOLLIN);
        return;
      }
      want = (size_t)((uint64_t)cfg.transfer - c->sent);
    } else {
      uint64_t inflight = c->sent - c->recvd;
      if (inflight >= (uint64_t)cfg.window) {
        set_events(c, EPOLLIN);
        return;
      }
      want = (size_t)((uint64_t)cfg.window - inflight);
    }
    if (want > sizeof pattern) want = sizeof pattern;
    ssize_t n = send(c->fd, pattern, want, MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += (uint64_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_events(c, EPOLLIN | EPOLLOUT);
      return;
    }
    io_errors++;
    close_conn(c, ST_DEAD);
    return;
  }
}

static void bulk_readable(conn_t* c) {
  for (;;) {
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n > 0) {
      c->recvd += (uint64_t)n;
      if (window_open(now_ns())) bytes_win += (uint64_t)n;
      continue;
    }
    if (n == 0) {
      if (c->state == ST_DRAIN) {
        bulk_done_transfer(c);
      } else {
        peer_closed++;
        close_conn(c, ST_DEAD);
      }
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    io_errors++;
    close_conn(c, ST_DEAD);
    return;
  }
  if (c->state == ST_STREAM) bulk_pump(c);
}

/* ---- the event loop ------------------------------------------------------------------------ */

static void on_event(conn_t* c, uint32_t ev) {
  if (c->fd < 0) return;
  if (c->state == ST_CONNECTING) {
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
    return;
  }
  if (cfg.mode == M_BULK) {
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) bulk_readable(c);
    if (c->fd >= 0 && c->state == ST_STREAM && (ev & EPOLLOUT)) bulk_pump(c);
    return;
  }
  if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) echo_readable(c);
  if (c->fd >= 0 && c->state == ST_SEND && (ev & EPOLLOUT)) send_request(c);
}

/* Opens connections of the connect phase, at most cfg.parallel in flight. */
static void open_more(void) {
  while (next_open < cfg.conns && connecting < cfg.parallel)
    open_conn(&conns[next_open++]);
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen -m echo|hold|bulk|accept|ws -p PORT [options]\n"
          "  -H HOST     server IPv4 address (127.0.0.1)\n"
          "  -c N        connections (echo, hold, bulk) or concurrent slots (accept)\n"
          "  -s BYTES    request line size including the newline (64); hold -s 0: never send\n"
          "  -d SECONDS  measurement (echo, bulk, accept) or hold duration (5)\n"
          "  -w SECONDS  warm-up before measuring (1)\n"
          "  -a N        spread source addresses over 127.0.0.1..127.0.0.N (auto)\n"
          "  -P PID      the server's pid, for CPU, RSS and wake-up sampling\n"
          "  -b BYTES    bulk: bytes per connection, then half-close (0: stream)\n"
          "  -W BYTES    bulk stream: bytes in flight per connection (4 MiB)\n"
          "  -C SECONDS  budget of the connect and verify phases (20)\n"
          "  -q N        connects in flight during the connect phase (256)\n"
          "  -T SECONDS  hard time limit of the whole run (auto)\n");
  exit(2);
}

static void parse_args(int argc, char** argv) {
  int o;
  while ((o = getopt(argc, argv, "m:H:p:c:s:d:w:a:P:b:W:C:q:T:h")) != -1) {
    switch (o) {
      case 'm': {
        int found = 0;
        for (int i = 0; i < 5; i++) {
          if (strcmp(optarg, kModeNames[i]) == 0) cfg.mode = i, found = 1;
        }
        if (!found) usage();
        break;
      }
      case 'H':
        cfg.host = optarg;
        break;
      case 'p':
        cfg.port = atoi(optarg);
        break;
      case 'c':
        cfg.conns = atoi(optarg);
        break;
      case 's':
        cfg.size = atoi(optarg);
        break;
      case 'd':
        cfg.duration = atof(optarg);
        break;
      case 'w':
        cfg.warmup = atof(optarg);
        break;
      case 'a':
        cfg.naddr = atoi(optarg);
        break;
      case 'P':
        cfg.pid = (pid_t)atoi(optarg);
        break;
      case 'b':
        cfg.transfer = atoll(optarg);
        break;
      case 'W':
        cfg.window = atoll(optarg);
        break;
      case 'C':
        cfg.connect_timeout = atof(optarg);
        break;
      case 'q':
        cfg.parallel = atoi(optarg);
        break;
      case 'T':
        cfg.limit = atof(optarg);
        break;
      default:
        usage();
    }
  }
  if (cfg.port <= 0 || cfg.port > 65535 || cfg.conns < 1 || cfg.duration <= 0 ||
      cfg.size < (cfg.mode == M_HOLD ? 0 : 1) || cfg.warmup < 0 || cfg.parallel < 1 ||
      cfg.window < 1 || cfg.naddr < 0 || cfg.naddr > 250)
    usage();
  if (cfg.naddr == 0) {
    /* About 28k ephemeral ports per source address; short connections leave TIME_WAIT
     * entries behind, so the accept mode spreads widely from the start. */
    cfg.naddr = cfg.mode == M_ACCEPT ? 16 : 1 + cfg.conns / 16000;
  }
  if (cfg.limit <= 0)
    cfg.limit = 2 * cfg.connect_timeout + cfg.warmup + cfg.duration + cfg.settle + 10.0;
}

static void raise_nofile(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < (rlim_t)need + 16) {
    fprintf(stderr, "loadgen: ulimit -n is %llu, %d connections need more\n",
            (unsigned long long)rl.rlim_cur, need);
    exit(2);
  }
}

int main(int argc, char** argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm((unsigned)ceil(cfg.limit));
  raise_nofile(cfg.conns);

  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)cfg.port);
  if (inet_pton(AF_INET, cfg.host, &target.sin_addr) != 1) {
    fprintf(stderr, "loadgen: bad IPv4 address %s\n", cfg.host);
    return 2;
  }
  request = malloc((size_t)cfg.size);
  if (!request) die("malloc");
  for (int i = 0; i < cfg.size - 1; i++)
    request[i] = (char)('a' + i % 26);
  request[cfg.size - 1] = '\n';
  req_len = rep_len = (uint32_t)cfg.size;
  if (cfg.mode == M_WS) {
    /* A masked text frame (one fixed key: the server unmasks whatever it is) whose payload is
     * the echo line; the reply is the same payload in an unmasked frame. */
    if (cfg.size > 125) {
      fprintf(stderr, "loadgen: ws mode takes -s up to 125\n");
      return 2;
    }
    char* frame = malloc((size_t)cfg.size + 6);
    if (!frame) die("malloc");
    static const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    frame[0] = (char)0x81;
    frame[1] = (char)(0x80 | cfg.size);
    memcpy(frame + 2, key, 4);
    for (int i = 0; i < cfg.size; i++)
      frame[6 + i] = (char)(request[i] ^ key[i % 4]);
    request = frame;
    req_len = (uint32_t)cfg.size + 6;
    rep_len = (uint32_t)cfg.size + 2;
  }
  for (size_t i = 0; i < sizeof pattern; i++)
    pattern[i] = (char)('A' + i % 61);
  conns = calloc((size_t)cfg.conns, sizeof *conns);
  if (!conns) die("calloc");
  for (int i = 0; i < cfg.conns; i++)
    conns[i].fd = -1;
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");

  snap_t base = snapshot(), held = {0}, s0 = {0}, s1 = {0};
  double self0 = 0, self1 = 0;
  double connect_s = 0;
  t_start = now_ns();
  uint64_t deadline = t_start + (uint64_t)(cfg.connect_timeout * 1e9);
  if (cfg.mode == M_ACCEPT) {
    /* No connect phase: slots start at once and the clock starts with them. */
    phase = P_WARMUP;
    deadline = t_start + (uint64_t)(cfg.warmup * 1e9);
    for (int i = 0; i < cfg.conns; i++)
      open_conn(&conns[i]);
  } else {
    open_more();
  }

  struct epoll_event evs[1024];
  while (phase != P_DONE) {
    uint64_t t = now_ns();
    int timeout = 100;
    if (deadline > t) {
      uint64_t ms = (deadline - t) / 1000000 + 1;
      if (ms < (uint64_t)timeout) timeout = (int)ms;
    } else {
      timeout = 0;
    }
    int n = epoll_wait(ep, evs, 1024, timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++)
      on_event(&conns[evs[i].data.u32], evs[i].events);
    t = now_ns();

    switch (phase) {
      case P_CONNECT:
        open_more();
        if ((next_open == cfg.conns && connecting == 0) || t >= deadline) {
          connect_s = (double)(t - t_start) / 1e9;
          for (int i = 0; i < cfg.conns; i++) {
            if (conns[i].state == ST_CONNECTING) {
              connect_errors++;
              close_conn(&conns[i], ST_DEAD);
            }
          }
          for (int i = next_open; i < cfg.conns; i++) {
            connect_errors++;
            conns[i].state = ST_DEAD;
          }
          next_open = cfg.conns;
          fprintf(stderr, "loadgen: %ld connected, %ld failed in %.2f s\n", established,
                  connect_errors, connect_s);
          if (cfg.mode == M_HOLD && cfg.size == 0) {
            phase = P_SETTLE; /* -s 0: connections that never send anything */
            deadline = t + (uint64_t)(cfg.settle * 1e9);
          } else if (cfg.mode == M_HOLD) {
            phase = P_VERIFY;
            deadline = t + (uint64_t)(cfg.connect_timeout * 1e9);
            for (int i = 0; i < cfg.conns; i++)
              if (conns[i].state == ST_READY) start_request(&conns[i]);
          } else {
            phase = P_WARMUP;
            deadline = t + (uint64_t)(cfg.warmup * 1e9);
            for (int i = 0; i < cfg.conns; i++) {
              conn_t* c = &conns[i];
              if (c->state != ST_READY) continue;
              if (cfg.mode == M_ECHO || cfg.mode == M_WS) {
                start_request(c);
              } else {
                c->state = ST_STREAM;
                bulk_pump(c);
              }
            }
          }
        }
        break;
      case P_VERIFY:
        if (verified + connect_errors + peer_closed + io_errors >= cfg.conns || t >= deadline) {
          fprintf(stderr, "loadgen: %ld verified\n", verified);
          phase = P_SETTLE;
          deadline = t + (uint64_t)(cfg.settle * 1e9);
        }
        break;
      case P_SETTLE:
        if (t >= deadline) {
          held = snapshot();
          s0 = held;
          self0 = self_cpu();
          t_win0 = t;
          t_win1 = t + (uint64_t)(cfg.duration * 1e9);
          phase = P_MEASURE;
          deadline = t_win1;
        }
        break;
      case P_WARMUP:
        if (t >= deadline) {
          s0 = snapshot();
          self0 = self_cpu();
          t_win0 = t;
          t_win1 = t + (uint64_t)(cfg.duration * 1e9);
          phase = P_MEASURE;
          deadline = t_win1;
        }
        break;
      case P_MEASURE:
        if (t >= deadline) {
          s1 = snapshot();
          self1 = self_cpu();
          phase = P_DONE;
        }
        break;
      default:
        break;
    }
  }
  alarm(0);

  double secs = (double)(t_win1 - t_win0) / 1e9;
  double srv_cpu = (s0.ok && s1.ok) ? s1.cpu_s - s0.cpu_s : -1;
  long wakeups = (s0.ok && s1.ok) ? s1.ctxt - s0.ctxt : -1;
  long served = 0, noreply = 0;
  for (int i = 0; i < cfg.conns; i++) {
    if (conns[i].replies_win) served++;
    if (conns[i].replies == 0) noreply++;
  }
  if (lat_n) qsort(lat, lat_n, sizeof *lat, cmp_u32);

  printf("mode=%s conns=%d", kModeNames[cfg.mode], cfg.conns);
  if (cfg.mode != M_ACCEPT && cfg.mode != M_BULK) printf(" size=%d", cfg.size);
  printf(
      " duration=%.3f established=%ld connect_errors=%ld io_errors=%ld peer_closed=%ld "
      "bad_replies=%ld naddr=%d",
      secs, established, connect_errors, io_errors, peer_closed, bad_replies, cfg.naddr);
  if (cfg.mode != M_ACCEPT) printf(" connect_s=%.3f", connect_s);
  switch (cfg.mode) {
    case M_ECHO:
    case M_WS:
      printf(" requests=%llu rps=%.1f served=%ld unserved=%ld noreply=%ld",
             (unsigned long long)requests_win, (double)requests_win / secs, served,
             established - served, noreply);
      break;
    case M_ACCEPT:
      printf(" connections=%ld cps=%.1f", conns_win, (double)conns_win / secs);
      break;
    case M_HOLD:
      printf(" verified=%ld", verified);
      if (base.ok && held.ok) {
        long grow = held.rss_kb - base.rss_kb;
        long held_conns = cfg.size == 0 ? established : verified;
        printf(" rss_base_kb=%ld rss_held_kb=%ld rss_end_kb=%ld bytes_per_conn=%.0f", base.rss_kb,
               held.rss_kb, s1.rss_kb,
               held_conns ? (double)grow * 1024.0 / (double)held_conns : -1.0);
      }
      break;
    case M_BULK:
      printf(" bytes=%llu mbps=%.1f transfers=%ld", (unsigned long long)bytes_win,
             (double)bytes_win / secs / 1e6, transfers_win);
      break;
  }
  if (cfg.mode == M_ECHO || cfg.mode == M_WS || cfg.mode == M_ACCEPT) {
    printf(" p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f", quantile_ms(0.50),
           quantile_ms(0.99), quantile_ms(0.999), quantile_ms(1.0));
  }
  if (s0.ok && s1.ok) {
    printf(" srv_cpu_s=%.4f srv_rss_kb=%ld srv_hwm_kb=%ld srv_wakeups=%ld", srv_cpu, s1.rss_kb,
           s1.hwm_kb, wakeups);
  }
  printf(" loadgen_cpu_s=%.3f\n", self1 - self0);
  fflush(stdout);
  return 0;
}
