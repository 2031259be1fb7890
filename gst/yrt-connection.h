/* The network side of one element: one WebSocket to the service at a time,
 * run on a network thread (yrt-network-loop.h): a thread of its own, or one
 * shared by up to `sessions_per_thread` elements.  libsoup objects never
 * leave that thread; other threads talk to it only through send(),
 * restart() and call_later(). */
#pragma once

#include "yrt-network-loop.h"

#include <gio/gio.h>
#include <gst/gst.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace yrt {

/* How the handshake is made, beyond the URL and the credential. */
struct ConnectionOptions {
  /* Sent with the handshake; values may be secrets, so only names are
   * ever logged. */
  std::vector<std::pair<std::string, std::string>> headers;
  std::string user_agent;  /* empty: no User-Agent header */
  /* TLS, with souphttpsrc's meanings: a database given wins; else the
   * system's CAs (unless use_system_ca is false) plus those of ca_file. */
  std::shared_ptr<GTlsDatabase> tls_database;
  std::string ca_file;
  bool use_system_ca = true;
  bool strict = true;      /* false: any certificate is accepted */
  std::string proxy;       /* http:// URI; empty: the environment's */
  std::string proxy_id;
  std::string proxy_pw;    /* a secret: never logged */
  /* Up to this many connections of the process share a network thread
   * (GMainContext); 1: a thread of its own; 0: automatic (NetworkLoop). */
  guint sessions_per_thread = 0;
};

/* Shares a GObject reference (nullptr stays nullptr). */
template <typename T>
std::shared_ptr<T> share_object (T *object)
{
  if (!object)
    return nullptr;
  return std::shared_ptr<T> (static_cast<T *> (g_object_ref (object)),
      [] (T *o) { g_object_unref (o); });
}

struct ConnectionCallbacks {
  /* All run on the worker thread. */
  std::function<void ()> opened;
  std::function<void (const char *data, gsize size)> text;
  std::function<void (gsize size)> binary;  /* not part of the protocol */
  /* The handshake failed: HTTP status (0 when none, e.g. DNS or TLS), a
   * human-readable cause, whether trying again cannot help (a refused
   * certificate, an invalid location), and the answer's Retry-After in ms
   * (nullopt when it had none). */
  std::function<void (guint http_status, const std::string &cause, bool permanent,
      std::optional<guint> retry_after_ms)> failed;
  /* An open socket closed without us asking. */
  std::function<void (gushort code, const std::string &reason)> closed;
};

class Connection : public NetworkLoop::Client {
 public:
  /* `log_object` (the element) names every log line of the connection. */
  Connection (ConnectionCallbacks callbacks, GstObject *log_object);
  ~Connection () override;
  Connection (const Connection &) = delete;
  Connection &operator= (const Connection &) = delete;

  /* Spawns the worker and starts the handshake; returns at once.
   * `authorization` is the whole header value and never logged.  A handshake
   * unanswered after `handshake_timeout_ms` fails (0 = wait forever). */
  void start (const std::string &url, const std::string &authorization,
      guint handshake_timeout_ms, const ConnectionOptions &options = {});
  /* Closes the socket (bounded wait for the close handshake) and joins the
   * worker is done with it (its network thread goes on if shared).  Safe to
   * call twice and from any thread; from the network thread it serves (a
   * bus handler of another element sharing it), it runs that thread's loop
   * until the close is done. */
  void stop ();
  /* Closes the current socket, if any, and opens a new one after `delay_ms`.
   * Frames not yet written are dropped: they belonged to the old session
   * (the dialog's InputLedger sends the input the new session needs). */
  void restart (guint delay_ms);

  /* How a frame may be treated on its way out. */
  enum class Frame { Control, LiveAudio, FileAudio };
  /* Queues a text frame; frames are written in order while the socket is
   * open and the peer keeps reading.  Thread-safe.  Control frames and live
   * audio wake the network thread at once; file audio (non-live, which
   * comes far faster than real time) is written in batches, a few ms later,
   * to spare a wake-up per chunk.  Beyond the live audio limit the oldest
   * live audio is dropped.  Returns false when there is no socket to write
   * to.  `samples`: the input samples a live audio frame carries, counted
   * against the limit and in dropped_samples () if it is dropped. */
  bool send (std::string text, Frame kind = Frame::Control, guint64 samples = 0);
  /* The live audio the outbox may hold, in input samples: measured in audio,
   * not bytes, so that everything the ledger holds fits, whatever the JSON
   * around it weighs. */
  void set_live_audio_limit (guint64 samples);
  /* Runs `fn` on the worker thread after `ms` (0 = soon), unless stopped. */
  void call_later (guint ms, std::function<void ()> fn);

  /* Bytes queued but not yet handed to the socket. */
  gsize queued_bytes () const;
  guint64 sent_bytes () const;
  guint64 received_bytes () const;
  /* Input samples of the live audio frames dropped because the outbox was
   * full. */
  guint64 dropped_samples () const;

 private:
  struct Worker;
  struct Queued {
    std::string text;
    bool droppable;
    guint64 samples;
  };
  void on_request () override;
  bool flush_due_locked (bool soon);
  void schedule_flush (bool soon);
  /* A source of ours on the worker's context, destroyed when the worker is
   * done if it has not run by then. */
  GSource *attach_tracked (guint ms, std::function<void ()> fn);
  GSource *attach_tracked_locked (guint ms, std::function<void ()> fn);
  void worker_done ();
  void flush_outbox ();
  void unpark ();
  void drop_oldest_locked ();

  ConnectionCallbacks callbacks_;
  GstObject *log_object_;
  std::shared_ptr<NetworkLoop> loop_;
  GMainContext *context_ = nullptr;  /* the loop's; guarded by lock_ */
  Worker *worker_ = nullptr;  /* touched only on the worker thread */

  mutable std::mutex lock_;
  std::deque<Queued> outbox_;
  gsize outbox_bytes_ = 0;
  guint64 outbox_live_samples_ = 0;
  guint64 live_audio_limit_ = G_MAXUINT64;
  guint64 sent_bytes_ = 0;
  guint64 received_bytes_ = 0;
  guint64 dropped_samples_ = 0;
  enum class Flush { None, Now, Soon, Parked };
  Flush flush_ = Flush::None;  /* Parked: until the socket takes data again */
  bool open_ = false;
  bool stopped_ = false;
  bool done_ = false;        /* the worker let go of everything */
  guint scheduling_ = 0;     /* send()s scheduling a flush outside lock_ */
  std::condition_variable changed_;  /* done_ or scheduling_ */
  std::vector<GSource *> sources_;   /* referenced; see attach_tracked */
  size_t sources_pruned_at_ = 0;
};

}  // namespace yrt
