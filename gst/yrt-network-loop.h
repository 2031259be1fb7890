/* Network threads: a GMainContext run by a thread of its own, which one
 * connection owns or up to `sessions-per-thread` connections of the process
 * share (by default: a thread each for the first few, shared beyond; see
 * docs/design.md, "Sharing a network thread"), and the batched wake-up that
 * lets many connections ask it to flush their outboxes for one wake-up. */
#pragma once

#include <glib.h>

#include <deque>
#include <memory>
#include <mutex>

namespace yrt {

class NetworkLoop : public std::enable_shared_from_this<NetworkLoop> {
 public:
  /* What a request runs on the loop: a connection's flush. */
  class Client {
   public:
    virtual ~Client () = default;
    virtual void on_request () = 0;

   private:
    friend class NetworkLoop;
    bool requested_ = false;  /* guarded by the loop's lock_ */
  };

  /* A loop with room for one more user among loops shared by at most `share`
   * users; share 1: a new loop of its own; share 0 (kAutomatic): a loop of
   * its own while the process has fewer than kAutoOwn automatic loops, else
   * the automatic loop with the most users below kAutoShare (a new one when
   * all are full).  Hand it back with release(). */
  static constexpr guint kAutomatic = 0;
  static constexpr guint kAutoOwn = 16;
  static constexpr guint kAutoShare = 25;
  static std::shared_ptr<NetworkLoop> acquire (guint share);
  static void release (std::shared_ptr<NetworkLoop> &loop);

  ~NetworkLoop ();
  NetworkLoop (const NetworkLoop &) = delete;
  NetworkLoop &operator= (const NetworkLoop &) = delete;

  GMainContext *context () const { return context_; }
  /* Whether the caller runs on this loop's thread. */
  bool on_thread () const { return g_thread_self () == thread_; }

  /* Thread-safe: `client`'s on_request() runs on the loop soon.  Requests
   * made before the loop gets to them cost one wake-up between them. */
  void request (Client *client);
  /* Forgets a pending request of `client` (which is going away). */
  void cancel (Client *client);

 private:
  explicit NetworkLoop (guint share);
  static std::shared_ptr<NetworkLoop> acquire_automatic ();
  static gpointer thread_main (gpointer data);
  static gboolean run_requests (gpointer data);
  gboolean run_pending ();

  GMainContext *context_ = nullptr;
  GMainLoop *loop_ = nullptr;
  GThread *thread_ = nullptr;
  const guint share_;       /* kAutomatic for the automatic loops */
  guint users_ = 0;        /* guarded by the registry's lock */

  std::mutex lock_;
  std::deque<Client *> pending_;
  GSource *wake_ = nullptr;  /* the idle source that runs pending_, while attached */
};

}  // namespace yrt
