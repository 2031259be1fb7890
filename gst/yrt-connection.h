/* The network thread: one WebSocket to the service, owned by a worker thread
 * with its own GMainContext.  libsoup objects never leave that thread; other
 * threads talk to it only through send() and call_later(). */
#pragma once

#include <glib.h>

#include <deque>
#include <functional>
#include <mutex>
#include <string>

namespace yrt {

struct ConnectionCallbacks {
  /* All run on the worker thread. */
  std::function<void ()> opened;
  std::function<void (const char *data, gsize size)> text;
  std::function<void (gsize size)> binary;  /* not part of the protocol */
  /* The handshake failed: HTTP status (0 when none, e.g. DNS or TLS) and a
   * human-readable cause. */
  std::function<void (guint http_status, const std::string &cause)> failed;
  /* An open socket closed; `by_us` when stop() asked for it. */
  std::function<void (gushort code, const std::string &reason, bool by_us)> closed;
};

class Connection {
 public:
  explicit Connection (ConnectionCallbacks callbacks);
  ~Connection ();
  Connection (const Connection &) = delete;
  Connection &operator= (const Connection &) = delete;

  /* Spawns the worker and starts the handshake; returns at once.
   * `authorization` is the whole header value and never logged. */
  void start (const std::string &url, const std::string &authorization);
  /* Closes the socket (bounded wait for the close handshake) and joins the
   * worker.  Safe to call twice and from any thread but the worker. */
  void stop ();

  /* Queues a text frame; frames are written in order once the socket is
   * open.  Thread-safe.  Returns false once the connection is finished. */
  bool send (std::string text);
  /* Runs `fn` on the worker thread after `ms` (0 = soon), unless stopped. */
  void call_later (guint ms, std::function<void ()> fn);
  /* Bytes queued but not yet handed to the socket. */
  gsize queued_bytes () const;
  guint64 sent_bytes () const;

 private:
  struct Worker;
  static gpointer thread_main (gpointer data);
  static gboolean flush_outbox_cb (gpointer data);
  void flush_outbox ();

  ConnectionCallbacks callbacks_;
  GThread *thread_ = nullptr;
  GMainContext *context_ = nullptr;
  Worker *worker_ = nullptr;  /* touched only on the worker thread */

  mutable std::mutex lock_;
  std::deque<std::string> outbox_;
  gsize outbox_bytes_ = 0;
  guint64 sent_bytes_ = 0;
  bool flush_scheduled_ = false;
  bool finished_ = false;
};

}  // namespace yrt
