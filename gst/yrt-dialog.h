/* Dialog: one conversation with the service.  Owns the connection, turns
 * server events into playout audio and output events, and keeps the books the
 * EOS drain needs (speech in progress, commits and answers outstanding).
 *
 * Threads: send_audio(), drain() and set_flushing() come from the streaming
 * thread; server events arrive on the connection's worker thread; both meet
 * under `lock_`.  Nothing here touches pads or builds messages: what the
 * application hears goes out as output events (yrt-output.h). */
#pragma once

#include "yrt-books.h"
#include "yrt-connection.h"
#include "yrt-formats.h"
#include "yrt-ledger.h"
#include "yrt-output.h"
#include "yrt-playout.h"
#include "yrt-protocol.h"
#include "yrt-recovery.h"
#include "yrt-resample.h"

#include <gst/gst.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>
#include <mutex>
#include <string>

namespace yrt {

enum class DialogError { NotAuthorized, NotFound, OpenFailed, Closed };

/* What the dialog needs from its element. */
class DialogHost {
 public:
  virtual ~DialogHost () = default;
  /* What the conversation says; the host routes it (bus, pads). */
  virtual void emit (output::Event event) = 0;
  virtual void post_error (DialogError kind, const std::string &text,
      const std::string &debug) = 0;
  virtual void post_warning (const std::string &text, const std::string &debug) = 0;
  virtual GstClockTime running_time () = 0;
  /* Stream time downstream is playing (our pts), or NONE when unknown. */
  virtual GstClockTime played_position () = 0;
  /* Latency configured downstream (LATENCY event), 0 when unknown. */
  virtual GstClockTime downstream_latency () = 0;
};

struct Endpoint {
  std::string url;            /* with the model parameter, no secrets */
  std::string authorization;  /* whole header value, or empty */
  ConnectionOptions connection;  /* headers, user agent */
};

struct DialogOptions {
  guint eos_timeout_ms = 60000;
  guint max_reconnects = 5;        /* in a row; 0 = never */
  guint reconnect_backoff_ms = 500;
  guint max_buffer_ms = 10000;     /* input held while no session can take it */
  guint session_lifetime_ms = 0;   /* roll over proactively; 0 = off */
  guint connect_timeout_ms = 20000; /* for the WebSocket handshake; 0 = none */
  guint resample_quality = 4;       /* answers to the src pad's rate; input to the accepted rate */
};

struct DialogStats {
  guint64 bytes_sent = 0;
  guint64 bytes_received = 0;
  guint64 bytes_queued = 0;            /* waiting for the peer to read */
  guint64 audio_samples_sent = 0;      /* at input-rate */
  GstClockTime audio_received = 0;     /* answer audio, at the rate it came at */
  guint output_rate_served = 0;        /* the answers' rate, as the service says */
  guint input_rate_accepted = 0;       /* the input's rate, as the service says */
  guint answers = 0;
  guint reconnects = 0;
  guint64 dropped_input_samples = 0;
  guint bad_events = 0;
  std::string last_error;
};

/* `location` plus `model=gpt://<folder>/<model>` unless it already has one. */
std::string endpoint_url (const std::string &location, const std::string &folder_id,
    const std::string &model);

class Dialog {
 public:
  enum class SendResult { Ok, Flushing, Failed };

  /* `log_object` (the element) names every log line of this dialog. */
  Dialog (DialogHost &host, Playout &playout, GstObject *log_object);
  ~Dialog ();

  /* READY→PAUSED: starts connecting; returns at once. */
  void open (const Endpoint &endpoint, const SessionConfig &config,
      const DialogOptions &options);
  /* PAUSED→READY: closes the socket and wakes every waiter. */
  void close ();

  /* Streaming thread.  Waits (bounded) while the session is not yet
   * configured and the pre-session queue is full. */
  SendResult send_audio (const guint8 *pcm, gsize size);
  /* After the last audio: commit what needs it, then EOS on the playout once
   * every answer is in (or eos-timeout-ms passed). */
  void drain ();
  void set_flushing (bool flushing);
  void set_live (bool live);
  DialogStats stats () const;

  /* Any thread: conversation control (the element's properties and action
   * signals).  Each returns false, logging why, when it cannot act. */
  void update_session (const SessionConfig &config);
  void set_barge_in (bool enabled);
  bool send_function_output (const std::string &call_id, const std::string &output);
  bool send_text (const std::string &text);
  bool commit ();
  /* Streaming thread: whether `commit` was asked for since the last call;
   * if so, send the partial chunk, then commit_now(). */
  bool take_commit_request ();
  void commit_now ();
  bool create_response (const char *instructions);
  bool cancel_response ();
  bool clear_input ();
  bool clear_conversation ();

 private:
  void on_opened ();
  void on_text (const char *data, gsize size);
  void on_failed (guint status, const std::string &cause, bool permanent);
  void on_closed (gushort code, const std::string &reason);
  /* The session ended under us: reconnect if allowed, else fail.  False when
   * it gave up (the caller reports why). */
  bool reconnect (const std::string &reason, bool retryable);
  void fail_response (const std::string &response_id);
  void on_lifetime_over (guint generation);
  void maybe_rollover ();
  bool rollover_locked ();
  void settle_response_locked (const ServerEvent &ev);

  void handle (ServerEvent &ev);
  void on_session_created (const ServerEvent &ev);
  void on_session_updated (const ServerEvent &ev);
  void on_error (const ServerEvent &ev);
  /* An error that answers our session.update: the update's answer all the
   * same, and a refused rate asked again at the documented one. */
  bool on_update_refused (const ServerEvent &ev);
  void formats_reported (const ServerEvent &ev);
  void refused_replay ();
  void on_speech_started (const ServerEvent &ev);
  void on_committed (const ServerEvent &ev);
  void on_response_created (const ServerEvent &ev);
  void on_response_text (const ServerEvent &ev, bool from_transcript, bool done);
  void on_audio (const ServerEvent &ev);
  void on_response_done (const ServerEvent &ev);
  void on_function_calls (const ServerEvent &ev);
  void on_transcript_failed (const ServerEvent &ev);
  void on_input_timeout (const ServerEvent &ev);
  void on_mcp (const ServerEvent &ev);
  void barge_in ();

  /* Callers hold lock_. */
  void send_locked (std::string frame);
  void send_session_update_locked ();
  void send_update_locked ();
  void send_unsent_locked ();
  void send_append_locked (const guint8 *pcm, gsize size, Connection::Frame kind);
  void send_drain_barrier_locked ();
  bool room_for_input_locked ();
  void replay_history_locked ();
  SessionConfig effective_config_locked () const;
  bool session_open_locked (const char *action) const;
  /* `for_turn`: it answers committed audio, which a new session is sent
   * again (and answers again), so a reconnection forgets the request. */
  void request_response_locked (const char *instructions = nullptr, bool for_turn = false);
  void send_response_create_locked (const ResponseBooks::Request &request);
  void release_queued_create_locked ();
  void send_call_outputs_locked ();
  void commit_now_locked ();
  bool outstanding_locked () const;
  void check_drain_locked ();
  void finish_drain_locked ();
  void post_connection (const char *state);
  void post_reconnecting (guint attempt, guint delay_ms, const std::string &reason);
  void start_session_locked ();
  void session_configured_locked ();
  gsize outbox_limit_locked () const;

  DialogHost &host_;
  Playout &playout_;
  GstObject *log_object_;
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
  std::string carried_history_;      /* that text, fixed at the reconnection */
  guint64 lost_at_cut_ = 0;          /* input that could not go again (samples) */
  guint sessions_ = 0;               /* session.created seen */
  guint generation_ = 0;             /* of the current session, for its timers */
  guint failures_in_a_row_ = 0;
  bool rollover_due_ = false;
  guint64 outage_dropped_ = 0;       /* live input dropped during this outage */
  bool commit_requested_ = false;    /* `commit` waiting for the streaming thread */
  DialogStats stats_;

  /* The books of the turn-taking. */
  guint64 uncommitted_samples_ = 0;  /* appended since our last commit */
  bool sent_audio_ = false;
  /* Responses expected, queued and active, function-call batches, the
   * drain's barrier. */
  ResponseBooks books_;
  bool draining_ = false;

  /* The answer's words: from output_text, or the audio transcript when the
   * server sends only that; never both. */
  struct AnswerText {
    std::string response_id;
    std::string text;
    bool from_transcript = false;
    bool done = false;
  };
  AnswerText answer_text_;

  bool barge_in_ = true;
  std::vector<std::string> known_items_;   /* for clear-conversation */
  gint64 turn_end_us_ = 0;                 /* monotonic, 0 = none pending */
  std::map<std::string, GstClockTime> first_audio_latency_;
  /* Network thread: downlink-in trace points. */
  gint64 trace_arrived_us_ = 0;  /* when the frame being handled came in */
  guint64 trace_deltas_ = 0;
};

}  // namespace yrt
