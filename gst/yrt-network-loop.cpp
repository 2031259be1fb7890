#include "yrt-network-loop.h"

#include <algorithm>
#include <vector>

namespace yrt {

namespace {
/* The shared loops of the process, by the share they were made for. */
std::mutex registry_lock;
std::vector<std::weak_ptr<NetworkLoop>> registry;

struct ThreadArgs {
  GMainContext *context;
  GMainLoop *loop;
};
}  // namespace

std::shared_ptr<NetworkLoop> NetworkLoop::acquire (guint share)
{
  if (share == kAutomatic)
    return acquire_automatic ();
  if (share == 1) {
    std::shared_ptr<NetworkLoop> own (new NetworkLoop (1));
    own->users_ = 1;
    return own;
  }
  std::lock_guard<std::mutex> guard (registry_lock);
  for (auto &weak : registry) {
    std::shared_ptr<NetworkLoop> loop = weak.lock ();
    if (loop && loop->share_ == share && loop->users_ < share) {
      loop->users_++;
      return loop;
    }
  }
  std::shared_ptr<NetworkLoop> loop (new NetworkLoop (share));
  loop->users_ = 1;
  registry.erase (std::remove_if (registry.begin (), registry.end (),
      [] (const std::weak_ptr<NetworkLoop> &w) { return w.expired (); }), registry.end ());
  registry.push_back (loop);
  return loop;
}

/* A process with a few elements keeps a thread for each (what one element
 * does on its thread never takes another's time); one with many fills
 * loops of up to kAutoShare, where a thread each would cost most of the CPU
 * in wake-ups (docs/performance.md, "Live sessions").  Filled one at a
 * time, not spread: elements made together are usually fed together, and
 * one wake-up of their loop then flushes them all (spread over 16 loops,
 * 400 sessions cost half as much again). */
std::shared_ptr<NetworkLoop> NetworkLoop::acquire_automatic ()
{
  std::lock_guard<std::mutex> guard (registry_lock);
  registry.erase (std::remove_if (registry.begin (), registry.end (),
      [] (const std::weak_ptr<NetworkLoop> &w) { return w.expired (); }), registry.end ());
  std::shared_ptr<NetworkLoop> fullest;
  guint automatic = 0;
  for (auto &weak : registry) {
    std::shared_ptr<NetworkLoop> loop = weak.lock ();
    if (!loop || loop->share_ != kAutomatic || loop->users_ == 0)
      continue;  /* going away */
    automatic++;
    if (loop->users_ < kAutoShare && (!fullest || loop->users_ > fullest->users_))
      fullest = loop;
  }
  if (automatic < kAutoOwn || !fullest) {
    fullest.reset (new NetworkLoop (kAutomatic));
    registry.push_back (fullest);
  }
  fullest->users_++;
  return fullest;
}

void NetworkLoop::release (std::shared_ptr<NetworkLoop> &loop)
{
  if (!loop)
    return;
  {
    std::lock_guard<std::mutex> guard (registry_lock);
    loop->users_--;
  }
  /* Outside the registry's lock: the last reference joins the thread. */
  loop.reset ();
}

NetworkLoop::NetworkLoop (guint share) : share_ (share)
{
  context_ = g_main_context_new ();
  loop_ = g_main_loop_new (context_, FALSE);
  auto *args = new ThreadArgs {g_main_context_ref (context_), g_main_loop_ref (loop_)};
  thread_ = g_thread_new ("yrt-network", thread_main, args);
}

/* The thread holds its own references, never `this`: the last user may
 * release the loop from the loop's own thread. */
gpointer NetworkLoop::thread_main (gpointer data)
{
  auto *args = static_cast<ThreadArgs *> (data);
  g_main_context_push_thread_default (args->context);
  g_main_loop_run (args->loop);
  /* Let finalizers queued by the connections' last unrefs run here. */
  while (g_main_context_iteration (args->context, FALSE)) {
  }
  g_main_context_pop_thread_default (args->context);
  g_main_loop_unref (args->loop);
  g_main_context_unref (args->context);
  delete args;
  return nullptr;
}

NetworkLoop::~NetworkLoop ()
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    pending_.clear ();
    if (wake_) {
      g_source_destroy (wake_);
      g_source_unref (wake_);
      wake_ = nullptr;
    }
  }
  if (on_thread ()) {
    /* Released by the loop's last user from a callback of this very loop:
     * the thread ends once that callback returns. */
    g_main_loop_quit (loop_);
    g_thread_unref (thread_);
  } else {
    /* From the loop itself, so a quit cannot come before the run. */
    GSource *quit = g_idle_source_new ();
    g_source_set_callback (quit, [] (gpointer loop) -> gboolean {
          g_main_loop_quit (static_cast<GMainLoop *> (loop));
          return G_SOURCE_REMOVE;
        }, g_main_loop_ref (loop_), (GDestroyNotify) g_main_loop_unref);
    g_source_attach (quit, context_);
    g_source_unref (quit);
    g_thread_join (thread_);
  }
  g_main_loop_unref (loop_);
  /* Frees sources that never ran (on a loop of its own: the timers of its
   * connection). */
  g_main_context_unref (context_);
}

void NetworkLoop::request (Client *client)
{
  GSource *attach = nullptr;
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (client->requested_)
      return;
    client->requested_ = true;
    pending_.push_back (client);
    if (wake_)
      return;  /* the loop will get to it: no wake-up of our own */
    wake_ = g_idle_source_new ();
    /* Not idle priority: with many sockets on the loop one of them is
     * nearly always ready, and idle sources would starve behind them. */
    g_source_set_priority (wake_, G_PRIORITY_DEFAULT);
    g_source_set_callback (wake_, run_requests, this, nullptr);
    attach = g_source_ref (wake_);
  }
  /* Outside lock_: attaching wakes the thread, which would wait for it. */
  g_source_attach (attach, context_);
  g_source_unref (attach);
}

void NetworkLoop::cancel (Client *client)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!client->requested_)
    return;
  client->requested_ = false;
  pending_.erase (std::remove (pending_.begin (), pending_.end (), client), pending_.end ());
}

/* Loop thread.  A client's request may end in the last user releasing the
 * loop (an application stopping an element from a bus handler): the loop
 * lives until this returns. */
gboolean NetworkLoop::run_requests (gpointer data)
{
  std::shared_ptr<NetworkLoop> keep = static_cast<NetworkLoop *> (data)->weak_from_this ().lock ();
  if (!keep)
    return G_SOURCE_REMOVE;  /* being destroyed by another thread */
  gboolean again = keep->run_pending ();
  return again;
}

/* The requests made so far, each taken under the lock, so a client
 * cancelled while another one's ran is never run. */
gboolean NetworkLoop::run_pending ()
{
  size_t count;
  {
    std::lock_guard<std::mutex> guard (lock_);
    count = pending_.size ();
  }
  for (size_t i = 0; i < count; i++) {
    Client *client;
    {
      std::lock_guard<std::mutex> guard (lock_);
      if (pending_.empty ())
        break;
      client = pending_.front ();
      pending_.pop_front ();
      client->requested_ = false;
    }
    client->on_request ();
  }
  std::lock_guard<std::mutex> guard (lock_);
  if (!wake_)
    return G_SOURCE_REMOVE;  /* destroyed meanwhile */
  if (!pending_.empty ())
    return G_SOURCE_CONTINUE;  /* made while we ran: after the sockets' turn */
  g_source_unref (wake_);
  wake_ = nullptr;
  return G_SOURCE_REMOVE;
}

}  // namespace yrt
