/* Backoff: full-jitter delays between attempts to reach the service, and
 * the service's Retry-After read as a floor under them. */
#include "yrt-backoff.h"

#include <libsoup/soup.h>

#include <atomic>

namespace yrt {

Backoff::Backoff (guint32 seed) : rand_ (g_rand_new_with_seed (seed)), seed_ (seed)
{
}

Backoff::~Backoff ()
{
  g_rand_free (rand_);
}

void Backoff::reseed (guint32 seed)
{
  seed_ = seed;
  g_rand_set_seed (rand_, seed);
}

guint Backoff::window_ms (guint attempt, guint base_ms)
{
  guint64 window = (guint64) base_ms << MIN (MAX (attempt, 1u), 20u);
  return (guint) MIN (window, (guint64) kMaxBackoffMs);
}

guint Backoff::delay_ms (guint attempt, guint base_ms, guint retry_after_ms)
{
  guint window = window_ms (attempt, base_ms);
  /* g_rand_int_range's end is exclusive: the delay stays below the window. */
  guint jitter = window > 0 ? (guint) g_rand_int_range (rand_, 0, (gint32) window) : 0;
  return MIN (retry_after_ms, kMaxRetryAfterMs) + jitter;
}

guint32 backoff_seed ()
{
  static std::atomic<guint32> taken {0};
  guint32 n = taken++;
  const char *env = g_getenv ("YRT_BACKOFF_SEED");
  if (!env || !*env)
    return g_random_int ();
  /* Mixed (splitmix32-like), so neighbouring elements get unrelated
   * sequences rather than seeds 1, 2, 3... */
  guint32 x = (guint32) g_ascii_strtoull (env, nullptr, 10) + n * 0x9E3779B9u;
  x = (x ^ (x >> 16)) * 0x85EBCA6Bu;
  x = (x ^ (x >> 13)) * 0xC2B2AE35u;
  return x ^ (x >> 16);
}

std::optional<guint> parse_retry_after (const char *value, gint64 now_us)
{
  if (!value)
    return std::nullopt;
  while (g_ascii_isspace (*value))
    value++;
  if (g_ascii_isdigit (*value)) {
    char *end = nullptr;
    guint64 seconds = g_ascii_strtoull (value, &end, 10);
    while (g_ascii_isspace (*end))
      end++;
    if (*end)
      return std::nullopt;
    return (guint) MIN (seconds, (guint64) kMaxRetryAfterMs / 1000) * 1000;
  }
  GDateTime *date = soup_date_time_new_from_http_string (value);
  if (!date)
    return std::nullopt;
  gint64 ms = (g_date_time_to_unix (date) * G_USEC_PER_SEC - now_us) / 1000;
  g_date_time_unref (date);
  return (guint) CLAMP (ms, (gint64) 0, (gint64) kMaxRetryAfterMs);
}

}  // namespace yrt
