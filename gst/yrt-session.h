/* Session: the life of the service sessions behind one dialog, and only
 * that.  It connects, reconnects with backoff when a session is lost, rolls
 * over at session-lifetime-ms, and configures each new session: its first
 * session.update is held until the service answers it (nothing else goes
 * before), then the session is sent the conversation so far (History, or
 * the instructions once the service refused replayed items) and the input
 * the lost one had not finished with (InputLedger), then whatever was held
 * for it.  It owns the formats the service grants (ServiceFormats) and the
 * input's way to the socket (the ledger, the `wire_` resampler for a
 * refused input rate, the outbox bound).
 *
 * What the other server events mean is the conversation's job
 * (yrt-conversation.h): the session hands them on, and tells it when a
 * session is ready, lost or replaced, through SessionListener.
 *
 * Threads: send_audio() from the streaming thread, connection callbacks on
 * the network thread, the rest from any thread.  One lock, `lock_`, guards
 * this and the conversation's state; the conversation takes it through
 * lock() and calls the `_locked` methods with it held.  Host callbacks
 * (emit, post_warning, post_error) are made without it. */
#pragma once

#include "yrt-backoff.h"
#include "yrt-connection.h"
#include "yrt-formats.h"
#include "yrt-host.h"
#include "yrt-ledger.h"
#include "yrt-playout.h"
#include "yrt-protocol.h"
#include "yrt-recovery.h"
#include "yrt-resample.h"

#include <gst/gst.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace yrt {

/* What the session tells the conversation it carries. */
class SessionListener {
 public:
  virtual ~SessionListener () = default;
  /* Network thread, no lock held: a server event that is not about the
   * session's life (anything but session.created, session.updated and an
   * error about our session.update or a replayed item).  `arrived_us`:
   * when its frame came in (monotonic), for the trace points; 0 if off. */
  virtual void handle (ServerEvent &ev, gint64 arrived_us) = 0;

  /* The rest with the lock held. */
  /* The session took its settings and was given the conversation so far
   * and the input again: what waited for a ready session may go. */
  virtual void session_ready_locked () = 0;
  /* The session is gone (lost, or rolled over between turns): settle what
   * was in flight on it.  Returns the response it cut (empty if none), for
   * response_cut(). */
  virtual std::string session_lost_locked () = 0;
  /* A session.update after the session's initial one went out; one was
   * answered (or refused, which answers it too). */
  virtual void update_sent_locked () = 0;
  virtual void update_answered_locked () = 0;
  /* Anything still to come back from the service; the EOS drain runs. */
  virtual bool outstanding_locked () const = 0;
  virtual bool draining_locked () const = 0;
  /* The session is over for good: the drain ends. */
  virtual void finish_drain_locked () = 0;

  /* No lock held: the response a lost session cut failed. */
  virtual void response_cut (const std::string &response_id) = 0;
};

class Session {
 public:
  enum class SendResult { Ok, Flushing, Failed };

  /* `log_object` (the element) names every log line. */
  Session (DialogHost &host, Playout &playout, GstObject *log_object,
      SessionListener &listener);
  ~Session ();

  /* READY→PAUSED: starts connecting; returns at once. */
  void open (const Endpoint &endpoint, const SessionConfig &config,
      const DialogOptions &options);
  /* PAUSED→READY: closes the socket and wakes every waiter. */
  void close ();

  /* Streaming thread: into the ledger, and to the session when it is
   * ready.  Non-live input waits (bounded) for room in the ledger. */
  SendResult send_audio (const guint8 *pcm, gsize size);
  void set_flushing_locked (bool flushing);
  void set_live (bool live);
  void update_session (const SessionConfig &config);
  /* What the session counts (the conversation adds its own). */
  DialogStats stats_locked () const;
  /* No lock held: a rollover that is due goes now if nothing is in flight
   * (the conversation calls it when a response is done). */
  void maybe_rollover ();

  /* ---- for the conversation ---- */
  std::mutex &lock () const { return lock_; }
  /* Call later on the network thread (no lock held then). */
  void call_later (guint delay_ms, std::function<void ()> fn);
  /* The rest with lock() held. */
  InputLedger &ledger () { return ledger_; }
  const InputLedger &ledger () const { return ledger_; }
  History &history () { return history_; }
  /* Configured: audio, requests and control frames go at once. */
  bool ready_locked () const { return ready_; }
  bool finished_locked () const { return finished_; }
  bool live_locked () const { return live_; }
  /* Whether an action may be taken; logs why not.  A session still being
   * configured takes requests too: they go once it is. */
  bool takes_requests_locked (const char *action) const;
  /* The service answers a VAD turn by itself (effective create_response). */
  bool server_answers_turns_locked () const { return effective_config_locked ().create_response; }
  /* The rate answers arrive at, as the service says. */
  guint served_rate_locked () const { return formats_.served_output (); }
  /* A control frame: now if ready, else held until the session is. */
  void send_locked (std::string frame);
  /* The ledger's audio and commits the session has not been given.
   * `catch_up`: a new session's first batch, which the send backlog never
   * drops (below). */
  void send_unsent_locked (bool catch_up = false);
  /* A session.update: the service answers it once it has read everything
   * sent before it. */
  void send_barrier_locked () { send_session_update_locked (); }
  /* Room in the ledger may have come: a waiting writer looks again. */
  void wake_locked () { ready_cond_.notify_all (); }

 private:
  void on_opened ();
  void on_text (const char *data, gsize size);
  void on_failed (guint status, const std::string &cause, bool permanent,
      std::optional<guint> retry_after_ms);
  void on_closed (gushort code, const std::string &reason);
  void announce_configured (const output::Session &session);
  void finish_locked ();
  /* The session ended under us: reconnect if allowed, else fail.  False when
   * it gave up (the caller reports why).  `retry_after_ms`: the service's
   * floor under the delay; `busy`: it refused for load (429), which is
   * retried before the first session too. */
  bool reconnect (const std::string &reason, bool retryable, guint retry_after_ms = 0,
      bool busy = false);
  void on_lifetime_over (guint session);
  bool rollover_locked ();
  std::string settle_lost_session_locked ();

  /* The events of the session's life, and the errors that are the
   * session's (on_session_error): one about our session.update
   * (on_update_refused: the update's answer all the same, and a refused
   * rate asked again at the documented one) or a replayed item
   * (refused_replay). */
  void refused_replay ();
  void on_session_created (const ServerEvent &ev);
  void on_session_updated (const ServerEvent &ev);
  void formats_reported (const ServerEvent &ev);
  bool on_session_error (const ServerEvent &ev);
  bool on_update_refused (const ServerEvent &ev);

  /* Callers hold lock_. */
  SessionConfig effective_config_locked () const;
  void send_session_update_locked ();
  void send_update_locked ();
  void send_append_locked (const guint8 *pcm, gsize size, Connection::Frame kind);
  bool room_for_input_locked ();
  void replay_history_locked ();
  void post_connection (const char *state);
  void post_reconnecting (guint attempt, guint delay_ms, const std::string &reason);
  void start_session_locked ();
  void session_configured_locked ();
  guint64 live_audio_limit_locked () const;

  DialogHost &host_;
  Playout &playout_;
  GstObject *log_object_;
  SessionListener &listener_;
  std::unique_ptr<Connection> connection_;

  mutable std::mutex lock_;
  std::condition_variable ready_cond_;
  Endpoint endpoint_;
  SessionConfig config_;
  DialogOptions options_;
  bool live_ = false;
  bool live_known_ = false;
  bool ready_ = false;      /* session configured: audio may flow */
  /* session.created came; its first session.update is not answered yet.
   * Nothing else goes until it is: a service that refuses it takes no audio. */
  bool configuring_ = false;
  ServiceFormats formats_;
  /* The input from input-rate (the ledger's) to the rate the service took,
   * when it refused input-rate; a stretch between two commits at a time. */
  PcmResampler wire_;
  guint updates_ = 0;       /* session.update sent, for their event_id */
  output::Session session_; /* of session.created, posted once configured */
  bool finished_ = false;   /* failed or closed: nothing more will flow */
  bool flushing_ = false;
  std::deque<std::string> pending_;  /* control frames held until the session is ready */
  InputLedger ledger_;               /* what the service has of the input, what goes again */
  History history_;                  /* replayed into a new session */
  /* The service refused a replayed assistant item: from then on the
   * conversation so far travels in the instructions. */
  bool history_in_instructions_ = false;
  std::string carried_history_;      /* that text, fixed when a session is gone */
  guint64 lost_at_cut_ = 0;          /* input that could not go again (samples) */
  /* session.created seen: the current session's number, which its
   * lifetime timer carries (a timer of an older one does nothing). */
  guint sessions_ = 0;
  guint failures_in_a_row_ = 0;
  Backoff backoff_;                  /* the jittered delays of those attempts */
  bool rollover_due_ = false;
  guint64 outage_dropped_ = 0;       /* live input dropped during this outage */
  DialogStats stats_;
};

}  // namespace yrt
