/* Conversation: what each server event means, and nothing about the
 * session's life.  It turns the service's events into the books
 * (ResponseBooks: speech, responses expected, queued and active, function
 * calls, the drain's barrier), the ledger's view of the turns
 * (InputLedger), answer audio for Playout and output events for the host;
 * it runs barge-in, the answer text, the EOS drain and the conversation
 * control of the action signals.
 *
 * It sends through its Session (yrt-session.h), which holds control frames
 * until a session is ready, and is told by it when a session is ready, lost
 * or replaced (SessionListener).  The session's lock guards its state: the
 * `_locked` methods are called with it held; host callbacks are made
 * without it. */
#pragma once

#include "yrt-books.h"
#include "yrt-host.h"
#include "yrt-playout.h"
#include "yrt-protocol.h"
#include "yrt-session.h"

#include <gst/gst.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace yrt {

class Conversation : public SessionListener {
 public:
  Conversation (Session &session, DialogHost &host, Playout &playout, GstObject *log_object);

  /* A new element session (READY→PAUSED): nothing outstanding. */
  void reset (const DialogOptions &options);
  /* Upstream flushes: the drain and a commit asked for go with the stream. */
  void flushed_locked ();
  /* The conversation's counters, added to the session's. */
  void add_stats_locked (DialogStats &stats) const;

  /* Streaming thread: after the last audio, commit what needs it, then EOS
   * on the playout once every answer is in (or eos-timeout-ms passed). */
  void drain ();

  /* Any thread: conversation control (the element's properties and action
   * signals).  Each returns false, logging why, when it cannot act. */
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

  /* SessionListener */
  void handle (ServerEvent &ev, gint64 arrived_us) override;
  void session_ready_locked () override;
  std::string session_lost_locked () override;
  void update_sent_locked () override { books_.update_sent (); }
  void update_answered_locked () override;
  bool outstanding_locked () const override;
  bool draining_locked () const override { return draining_; }
  void finish_drain_locked () override;
  void response_cut (const std::string &response_id) override;

 private:
  void on_error (const ServerEvent &ev);
  void on_speech_started (const ServerEvent &ev);
  void on_speech_stopped (const ServerEvent &ev);
  void on_committed (const ServerEvent &ev);
  void on_response_created (const ServerEvent &ev);
  void on_response_text (const ServerEvent &ev, bool from_transcript, bool done);
  void on_audio (const ServerEvent &ev, gint64 arrived_us);
  void on_response_done (const ServerEvent &ev);
  void on_function_calls (const ServerEvent &ev);
  void on_transcript (const ServerEvent &ev);
  void on_transcript_failed (const ServerEvent &ev);
  void on_input_timeout (const ServerEvent &ev);
  void on_mcp (const ServerEvent &ev);
  void barge_in ();
  void settle_response_locked (const ServerEvent &ev);

  /* Callers hold the lock. */
  void send_drain_barrier_locked ();
  /* `for_turn`: it answers committed audio, which a new session is sent
   * again (and answers again), so a reconnection forgets the request. */
  void request_response_locked (const char *instructions = nullptr, bool for_turn = false);
  void send_response_create_locked (const ResponseBooks::Request &request);
  void release_queued_create_locked ();
  void send_call_outputs_locked ();
  void commit_now_locked ();
  void check_drain_locked ();

  Session &session_;
  DialogHost &host_;
  Playout &playout_;
  GstObject *log_object_;
  std::mutex &lock_;  /* the session's */

  guint eos_timeout_ms_ = 0;
  bool commit_requested_ = false;    /* `commit` waiting for the streaming thread */
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
  guint answers_ = 0;                      /* completed */
  GstClockTime audio_received_ = 0;        /* at the rate it came at */
  guint64 trace_deltas_ = 0;               /* network thread: downlink-in trace points */
};

}  // namespace yrt
