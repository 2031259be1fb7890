/* Backoff: when to try the service again after a lost session or a refused
 * handshake.  Full jitter (each delay drawn at random below an exponential
 * window), so a pool of elements the service dropped together does not come
 * back in the same instant; the service's Retry-After, when it sends one, is
 * a floor under the delay.  Plain data, no locking, no I/O. */
#pragma once

#include <glib.h>

#include <optional>

namespace yrt {

/* The window never exceeds this: a delay is below 30 s, plus Retry-After. */
constexpr guint kMaxBackoffMs = 30000;
/* A Retry-After beyond this is taken as this (a wrong clock, a typo). */
constexpr guint kMaxRetryAfterMs = 600000;

class Backoff {
 public:
  /* `seed` fixes the sequence of delays (backoff_seed() picks one). */
  explicit Backoff (guint32 seed = 0);
  ~Backoff ();
  Backoff (const Backoff &) = delete;
  Backoff &operator= (const Backoff &) = delete;

  void reseed (guint32 seed);
  guint32 seed () const { return seed_; }

  /* min (kMaxBackoffMs, base_ms * 2^attempt), attempt counted from 1: the
   * first attempt's mean delay is base_ms. */
  static guint window_ms (guint attempt, guint base_ms);
  /* The delay before `attempt`: Retry-After (0: none) plus a random part
   * in [0, window_ms (attempt, base_ms)). */
  guint delay_ms (guint attempt, guint base_ms, guint retry_after_ms = 0);

 private:
  GRand *rand_;
  guint32 seed_;
};

/* A new element's seed: random, or, with YRT_BACKOFF_SEED=<n> in the
 * environment (to replay a run), derived from n and how many seeds this
 * process took before, so that elements still differ from each other. */
guint32 backoff_seed ();

/* A Retry-After header's value in ms: delta-seconds ("120") or an
 * HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT", measured from `now`, real
 * time in µs since the epoch).  nullopt when absent or unreadable; a date
 * in the past is 0.  Capped at kMaxRetryAfterMs. */
std::optional<guint> parse_retry_after (const char *value, gint64 now_us);

}  // namespace yrt
