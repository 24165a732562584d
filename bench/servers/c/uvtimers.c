/* uvtimers.c: the C reference of the timer-accuracy scenario of uvsocket's benchmark suite.
 *
 *   uvtimers N ROUNDS LO_MS HI_MS
 *
 * N libuv timers each wait ROUNDS times, one after the other, for an interval between LO_MS
 * and HI_MS milliseconds (the same deterministic sequence as the Lua timers.lua scripts), and
 * record how late each expiry came compared with the time the wait was started. Prints one
 * line of key=value pairs (the format of bench/servers/lib/timerstats.lua).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <uv.h>

typedef struct {
  uv_timer_t timer;
  int index;
  int round;
  uint64_t started; /* ns */
  uint64_t wanted;  /* ns */
} sleeper_t;

static int n_tasks, rounds, lo, hi;
static double* late_ms;
static size_t n_late;
static long early;

static uint64_t interval_ms(int i, int r) {
  return (uint64_t)(lo + (i * 7919 + r * 104729) % (hi - lo + 1));
}

static void arm(sleeper_t* s);

static void on_timer(uv_timer_t* t) {
  sleeper_t* s = t->data;
  double late = ((double)(uv_hrtime() - s->started) - (double)s->wanted) / 1e6;
  if (late < 0) early++;
  late_ms[n_late++] = late;
  if (s->round < rounds) {
    arm(s);
  } else {
    uv_close((uv_handle_t*)t, NULL);
  }
}

static void arm(sleeper_t* s) {
  s->round++;
  uint64_t ms = interval_ms(s->index, s->round);
  s->wanted = ms * 1000000u;
  s->started = uv_hrtime();
  uv_timer_start(&s->timer, on_timer, ms, 0);
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double quantile(double p) {
  size_t i = (size_t)(p * (double)n_late + 0.999999);
  if (i > 0) i--;
  if (i >= n_late) i = n_late - 1;
  return late_ms[i];
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: uvtimers N ROUNDS LO_MS HI_MS\n");
    return 2;
  }
  n_tasks = atoi(argv[1]);
  rounds = atoi(argv[2]);
  lo = atoi(argv[3]);
  hi = atoi(argv[4]);
  if (n_tasks < 1 || rounds < 1 || lo < 0 || hi < lo) return 2;
  late_ms = malloc(sizeof *late_ms * (size_t)n_tasks * (size_t)rounds);
  sleeper_t* s = calloc((size_t)n_tasks, sizeof *s);
  if (!late_ms || !s) return 1;
  uv_loop_t* loop = uv_default_loop();
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < n_tasks; i++) {
    s[i].index = i + 1;
    uv_timer_init(loop, &s[i].timer);
    s[i].timer.data = &s[i];
    arm(&s[i]);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  double wall = (double)(uv_hrtime() - t0) / 1e9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
  qsort(late_ms, n_late, sizeof *late_ms, cmp);
  printf(
      "tasks=%d wakeups=%zu early=%ld late_p50_ms=%.3f late_p99_ms=%.3f late_max_ms=%.3f "
      "wall_s=%.3f cpu_s=%.3f\n",
      n_tasks, n_late, early, quantile(0.5), quantile(0.99), late_ms[n_late - 1], wall, cpu);
  free(s);
  free(late_ms);
  return 0;
}
