/* test_batcher.c - the daemon's micro-batcher (src/daemon/batch.c) on a
 * real libuv loop and thread pool: every customer gets exactly the answer
 * the core serving API gives them alone (serve_one), whether the batcher
 * ran them whole, batched or with the scan split over the workers, and a
 * batcher closed with jobs queued and running answers them all and frees
 * itself (the shutdown use-after-free of CI, found by ASan, in a test aimed
 * at it). On the int8 pass every third item is a SIMILAR, interleaved with
 * the RECOMMENDs: each kind goes in jobs of its own and every SIMILAR gets
 * serve_similar_one's answer. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "batch.h"
#include "recd/model.h"
#include "recd/serve.h"
#include "testutil.h"

enum { N_ITEMS = 3000, K = 16, N_CUST = 40, HIST = 6 };

static char *dir;
static model_t *m;

static void setup(void) {
  dir = tu_mkdtemp();
  tu_write_model(tu_path(dir, "m.bin"), N_ITEMS, K, 4, 11);
  char err[RECD_ERRLEN];
  ck_assert_msg(model_load(&m, tu_path(dir, "m.bin"), err) == 0, "%s", err);
}

static void teardown(void) {
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}

typedef struct cust {
  batch_item_t it;
  rec_query_t q;
  uint32_t hist[HIST];
  float w[HIST];
  int done;
  serve_answer_t got;
} cust_t;

static int n_done;

static void on_done(batch_item_t *it, const serve_answer_t *a) {
  cust_t *c = (cust_t *)it;
  ck_assert_int_eq(c->done, 0); /* exactly once */
  c->done = 1;
  n_done++;
  c->got = *a;
  /* a is valid during the call only: keep copies */
  size_t n = a->n ? a->n : 1;
  c->got.items = malloc(n * sizeof *c->got.items);
  c->got.scores = malloc(n * sizeof *c->got.scores);
  c->got.reasons = a->reasons ? malloc(n * sizeof *c->got.reasons) : NULL;
  if (a->rc == 0 && a->n > 0) {
    memcpy(c->got.items, a->items, a->n * sizeof *a->items);
    memcpy(c->got.scores, a->scores, a->n * sizeof *a->scores);
    if (a->reasons)
      memcpy(c->got.reasons, a->reasons, a->n * sizeof *a->reasons);
  }
}

/* Customer j: a varied mix (opted out, no history, reasons, filters);
 * with `similar`, every third one asks SIMILAR instead. */
static void make_cust(cust_t *c, const serve_model_t *sm, size_t j, int similar) {
  memset(c, 0, sizeof *c);
  for (int h = 0; h < HIST; h++) {
    c->hist[h] = (uint32_t)((j * 131 + (size_t)h * 977) % N_ITEMS);
    c->w[h] = 1.0f + (float)h;
  }
  c->q = (rec_query_t){.hist = c->hist, .hist_w = c->w, .n_hist = j % 7 == 3 ? 0 : HIST,
                       .history_limit = 100, .personalize = j % 11 != 5,
                       .exclude_history = 1, .count = 10 + j % 5, .offset = j % 3,
                       .with_reasons = j % 4 == 1};
  c->it.model = sm;
  c->it.q = &c->q;
  c->it.done = on_done;
  if (similar && j % 3 == 2) {
    c->it.similar = 1;
    c->it.item = (uint32_t)((j * 37) % N_ITEMS);
    c->q.max_per_category = j % 2;
  }
}

static void check_against_serve_one(cust_t *c, size_t j) {
  serve_answer_t want;
  rec_ws_t ws;
  rec_ws_init(&ws);
  if (c->it.similar)
    ck_assert_int_eq(serve_similar_one(c->it.model, c->it.item, &c->q, &ws, &want), 0);
  else
    ck_assert_int_eq(serve_one(c->it.model, &c->q, &ws, &want), 0);
  ck_assert_msg(c->done, "customer %zu never answered", j);
  ck_assert_int_eq(c->got.rc, 0);
  ck_assert_int_eq(c->got.personalized, want.personalized);
  ck_assert_uint_eq(c->got.n, want.n);
  for (size_t i = 0; i < want.n; i++) {
    ck_assert_msg(c->got.items[i] == want.items[i], "customer %zu rank %zu: %u, want %u", j, i,
                  c->got.items[i], want.items[i]);
    ck_assert(c->got.scores[i] == want.scores[i]);
    ck_assert((c->got.reasons == NULL) == (want.reasons == NULL)); /* SIMILAR: none */
    if (want.reasons != NULL)
      ck_assert_int_eq(c->got.reasons[i], want.reasons[i]);
  }
  serve_answer_free(&want);
  rec_ws_free(&ws);
  free(c->got.items);
  free(c->got.scores);
  free(c->got.reasons);
}

/* The served model on `pass`, chosen rather than automatic. */
static void serve_model_on(serve_model_t *sm, serve_pass_t pass) {
  serve_opts_t so;
  serve_opts_default(&so);
  so.automatic = 0;
  so.pass = pass;
  ck_assert_int_eq(serve_model_init(sm, m, &so), 0);
}

/* Submits the N_CUST customers (some SIMILARs with `similar`); nothing is
 * answered from inside a submission. */
static void submit_all(batcher_t *b, const serve_model_t *sm, cust_t *cust, int similar) {
  n_done = 0;
  for (size_t j = 0; j < N_CUST; j++) {
    make_cust(&cust[j], sm, j, similar);
    batcher_submit(b, &cust[j].it);
  }
  ck_assert_int_eq(n_done, 0);
}

/* Serves N_CUST customers through a batcher of `workers` x `rows` on pass
 * `pass`, split from `split` items, closing it right after the submissions
 * when `close_early`. */
static void run(serve_pass_t pass, unsigned workers, unsigned rows, uint32_t split,
                int close_early, uint64_t *split_jobs) {
  serve_model_t sm;
  serve_model_on(&sm, pass);
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  batcher_t *b;
  ck_assert_int_eq(batcher_new(&loop, workers, rows, split, 3000000, &b), 0);
  static cust_t cust[N_CUST];
  submit_all(b, &sm, cust, pass == SERVE_PASS_INT8);
  batcher_stats_t st;
  batcher_get_stats(b, &st);
  if (close_early)
    batcher_close(b);
  /* one turn dispatches; keep running until every item is back */
  while (n_done < N_CUST)
    uv_run(&loop, UV_RUN_ONCE);
  if (!close_early) {
    batcher_get_stats(b, &st);
    ck_assert_uint_eq(st.rows, N_CUST);
    ck_assert_uint_le(st.max_rows_seen, rows);
    *split_jobs = st.split_jobs;
    batcher_close(b);
  }
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0); /* every handle closed */
  for (size_t j = 0; j < N_CUST; j++)
    check_against_serve_one(&cust[j], j);
  serve_model_free(&sm);
}

START_TEST(float_pass_batches) {
  uint64_t split;
  run(SERVE_PASS_FLOAT, 2, 8, 0, 0, &split);
  ck_assert_uint_eq(split, 0); /* the float pass is never split */
}
END_TEST

START_TEST(int8_pass_whole) {
  uint64_t split;
  run(SERVE_PASS_INT8, 2, 16, UINT32_MAX, 0, &split);
  ck_assert_uint_eq(split, 0);
}
END_TEST

START_TEST(int8_pass_split) {
  uint64_t split;
  run(SERVE_PASS_INT8, 2, 5, 0, 0, &split);
  ck_assert_uint_gt(split, 0);
}
END_TEST

/* A pool thread held until its semaphore is posted. */
typedef struct blocker {
  uv_work_t w;
  uv_sem_t go;
  int began;
} blocker_t;

static void blocker_work(uv_work_t *w) {
  blocker_t *bl = w->data;
  __atomic_store_n(&bl->began, 1, __ATOMIC_SEQ_CST);
  uv_sem_wait(&bl->go);
}

static void blocker_after(uv_work_t *w, int status) {
  (void)w;
  ck_assert_int_eq(status, 0);
}

/* A batcher on a loop whose pool threads are all held by blockers until
 * held_release(), with the N_CUST customers submitted (some SIMILARs):
 * what the loop thread does alone shows in the stats before the release. */
enum { POOL = 2 }; /* UV_THREADPOOL_SIZE, set in main() */
typedef struct held {
  serve_model_t sm;
  uv_loop_t loop;
  blocker_t bl[POOL];
  batcher_t *b;
  cust_t cust[N_CUST];
} held_t;

static void held_start(held_t *h, unsigned max_rows, uint64_t help_ns) {
  serve_model_on(&h->sm, SERVE_PASS_INT8);
  ck_assert_int_eq(uv_loop_init(&h->loop), 0);
  for (int i = 0; i < POOL; i++) {
    ck_assert_int_eq(uv_sem_init(&h->bl[i].go, 0), 0);
    h->bl[i].began = 0;
    h->bl[i].w.data = &h->bl[i];
    ck_assert_int_eq(uv_queue_work(&h->loop, &h->bl[i].w, blocker_work, blocker_after), 0);
  }
  for (int i = 0; i < POOL; i++) /* every thread is held */
    while (!__atomic_load_n(&h->bl[i].began, __ATOMIC_SEQ_CST))
      uv_sleep(1);
  ck_assert_int_eq(batcher_new(&h->loop, 2, max_rows, 0, help_ns, &h->b), 0);
  submit_all(h->b, &h->sm, h->cust, 1);
}

/* held_start, then one turn of the loop (its check callback dispatches
 * the first jobs), then the stats. */
static void held_first_turn(held_t *h, unsigned max_rows, uint64_t help_ns,
                            batcher_stats_t *st) {
  held_start(h, max_rows, help_ns);
  uv_run(&h->loop, UV_RUN_NOWAIT);
  batcher_get_stats(h->b, st);
}

/* Lets the pool go and runs the loop until every customer is answered. */
static void held_release(held_t *h) {
  for (int i = 0; i < POOL; i++)
    uv_sem_post(&h->bl[i].go);
  while (n_done < N_CUST)
    uv_run(&h->loop, UV_RUN_ONCE);
  batcher_stats_t st;
  batcher_get_stats(h->b, &st);
  ck_assert_uint_eq(st.rows, N_CUST);
}

/* Closes everything and checks every answer against serve_one's. */
static void held_finish(held_t *h) {
  batcher_close(h->b);
  ck_assert_int_eq(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&h->loop), 0);
  for (int i = 0; i < POOL; i++)
    uv_sem_destroy(&h->bl[i].go);
  for (size_t j = 0; j < N_CUST; j++)
    check_against_serve_one(&h->cust[j], j);
  serve_model_free(&h->sm);
}

/* Every pool thread busy (as with a reload): the loop thread, one of each
 * split job's pieces for jobs of up to two customers, scans the whole
 * first job alone and answers it exactly; the pool's piece that starts
 * later finds the work done. Without it the job would wait for the pool.
 * Only the budget could stop it here: nothing else is pending on the
 * loop. */
START_TEST(int8_split_loop_thread_helps) {
  static held_t h;
  /* one turn: the check callback dispatches the first job and helps, then
   * a second one, whose pieces queue on the pool: the loop thread helps
   * only a job that runs alone */
  batcher_stats_t st;
  held_first_turn(&h, 2, UINT64_MAX / 2, &st);
  ck_assert_uint_eq(st.split_jobs, 2);
  ck_assert_uint_eq(st.helped_jobs, 1);
  ck_assert_uint_eq(st.helped_chunks, 1); /* N_ITEMS: one chunk, all of it */
  ck_assert_int_eq(n_done, 0);           /* answered when the pieces are back */
  held_release(&h);
  batcher_get_stats(h.b, &st);
  ck_assert_uint_ge(st.helped_jobs, 1);
  held_finish(&h);
}
END_TEST

/* The loop thread's budget spent before it claims anything (1 ns): it
 * hands its piece to the pool (scoring_split_loop_relieved), which then
 * runs one piece more than it was first given; every answer is still the
 * exact one, and the job is answered only once that piece is back. */
START_TEST(int8_split_loop_thread_hands_over) {
  static held_t h;
  batcher_stats_t st;
  held_first_turn(&h, 1, 1, &st);
  ck_assert_uint_eq(st.split_jobs, 2); /* the second without the loop thread */
  ck_assert_uint_eq(st.helped_jobs, 0); /* it left before its first chunk */
  ck_assert_uint_eq(st.helped_chunks, 0);
  ck_assert_uint_eq(st.relieved_jobs, 1);
  ck_assert_int_eq(n_done, 0);
  held_release(&h);
  batcher_get_stats(h.b, &st);
  ck_assert_uint_eq(st.jobs, N_CUST); /* one customer per job (max_rows 1) */
  /* the later jobs find a free pool: a piece may (rarely: the loop thread
   * preempted right after queueing) claim all the work before the loop
   * thread looks */
  ck_assert_uint_ge(st.relieved_jobs, 1);
  ck_assert_uint_le(st.relieved_jobs, N_CUST);
  held_finish(&h);
}
END_TEST

/* Network work pending (a readable socket the loop watches): the loop
 * thread leaves its piece before its first chunk, serves the socket, and
 * comes back after that iteration's I/O callbacks to scan the job itself
 * (both pool threads are held): no pool piece takes its place. The
 * socket's callback reads its byte only the second time, so that it is
 * still readable when the first job is dispatched (the check phase comes
 * after the poll phase). */
static int poll_calls, poll_reads;
static void on_readable(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  char c;
  int fd = *(int *)h->data;
  if (++poll_calls < 2)
    return;
  ck_assert_int_eq(read(fd, &c, 1), 1);
  poll_reads++;
}

START_TEST(int8_split_loop_thread_comes_back) {
  static held_t h;
  held_start(&h, 2, UINT64_MAX / 2);
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  uv_poll_t poll;
  ck_assert_int_eq(uv_poll_init(&h.loop, &poll, sv[0]), 0);
  poll.data = &sv[0];
  ck_assert_int_eq(uv_poll_start(&poll, UV_READABLE, on_readable), 0);
  poll_calls = poll_reads = 0;
  ck_assert_int_eq(write(sv[1], "x", 1), 1); /* network work */
  /* one turn: the check callback dispatches the first job; its piece
   * leaves at once, since the socket is still readable */
  uv_run(&h.loop, UV_RUN_NOWAIT);
  ck_assert_int_eq(poll_calls, 1);
  batcher_stats_t st;
  batcher_get_stats(h.b, &st);
  ck_assert_uint_eq(st.split_jobs, 2); /* the second without the loop thread */
  ck_assert_uint_eq(st.helped_chunks, 0);
  ck_assert_uint_eq(st.relieved_jobs, 0);
  /* the next: the socket is served, then the loop thread comes back */
  uv_run(&h.loop, UV_RUN_NOWAIT);
  ck_assert_int_eq(poll_reads, 1);
  batcher_get_stats(h.b, &st);
  ck_assert_uint_eq(st.helped_jobs, 1);
  ck_assert_uint_eq(st.helped_chunks, 1); /* N_ITEMS: one chunk, all of it */
  ck_assert_uint_eq(st.relieved_jobs, 0);
  ck_assert_int_eq(n_done, 0); /* answered when the pool's piece is back */
  uv_poll_stop(&poll);
  uv_close((uv_handle_t *)&poll, NULL);
  held_release(&h);
  held_finish(&h);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* Split jobs overlap: with both pool threads busy, two split jobs are
 * dispatched at once (as many as there are workers, never more), each
 * with a piece on every worker, so four pieces wait for two threads; the
 * loop thread takes no part (budget 0). Once the pool is free, a thread
 * done with one job's chunks goes on to the other's, and every answer is
 * the exact one. */
START_TEST(int8_split_jobs_overlap) {
  static held_t h;
  batcher_stats_t st;
  held_first_turn(&h, 4, 0, &st);
  ck_assert_uint_eq(st.jobs, 2);
  ck_assert_uint_eq(st.split_jobs, 2);
  ck_assert_uint_eq(st.rows, 8);
  ck_assert_uint_eq(st.helped_jobs, 0);
  ck_assert_int_eq(n_done, 0);
  held_release(&h);
  batcher_get_stats(h.b, &st);
  ck_assert_uint_eq(st.split_jobs, st.jobs);
  ck_assert_uint_eq(st.helped_jobs, 0);
  ck_assert_uint_le(st.max_rows_seen, 4);
  held_finish(&h);
}
END_TEST

START_TEST(closed_with_jobs_in_flight) {
  uint64_t split;
  run(SERVE_PASS_INT8, 2, 3, 0, 1, &split);
  run(SERVE_PASS_FLOAT, 1, 1, 0, 1, &split);
}
END_TEST

int main(void) {
  /* a known pool size, for int8_split_loop_thread_helps: libuv reads it
   * when the pool first starts */
  setenv("UV_THREADPOOL_SIZE", "2", 1);
  Suite *s = suite_create("batcher");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, float_pass_batches);
  tcase_add_test(tc, int8_pass_whole);
  tcase_add_test(tc, int8_pass_split);
  tcase_add_test(tc, int8_split_loop_thread_helps);
  tcase_add_test(tc, int8_split_loop_thread_hands_over);
  tcase_add_test(tc, int8_split_loop_thread_comes_back);
  tcase_add_test(tc, int8_split_jobs_overlap);
  tcase_add_test(tc, closed_with_jobs_in_flight);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
