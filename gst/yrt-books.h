/* ResponseBooks: the books of the conversation with the service, apart from
 * the input (InputLedger): whether the user is speaking, which responses
 * are expected, queued and active, the function-call batches waiting for
 * their outputs, and the session.update count the EOS drain's barrier waits
 * on.  It decides what may go when; the dialog sends it.
 *
 * Plain data, no locking, no I/O: the dialog guards and drives it (unit
 * tests: tests/check/books.cpp). */
#pragma once

#include "yrt-protocol.h"

#include <glib.h>

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace yrt {

class ResponseBooks {
 public:
  /* A response.create to send. */
  struct Request {
    std::optional<std::string> instructions;  /* nullopt: the session's */
    /* It answers committed audio, which a new session is sent again (and
     * answers again), so a lost session forgets it. */
    bool for_turn = false;
  };
  /* Function outputs of one response, in call order, ready to go. */
  using Outputs = std::vector<std::pair<std::string, std::string>>;

  /* A new element session: nothing outstanding. */
  void reset ();

  /* ---- the user's turn ---- */
  void speech_started () { speech_open_ = true; }
  void committed () { speech_open_ = false; }

  /* ---- responses ---- */
  /* A response is wanted: returned to send now when nothing is active or
   * expected and a session takes it (`ready`), else queued (the service
   * refuses a second one: conversation_already_has_active_response). */
  std::optional<Request> request (Request request, bool ready);
  /* The server will create one by itself (a VAD commit, create_response). */
  void expect_server_response () { expected_.push_back (true); }
  /* What we asked went out. */
  void sent (const Request &request) { expected_.push_back (request.for_turn); }
  /* Returns whether it answers a turn. */
  bool response_created (const std::string &response_id);
  /* conversation_already_has_active_response: one expected will not come. */
  void response_refused ();
  void response_done (const std::string &response_id);
  /* The next queued request, when it may go now. */
  std::optional<Request> next (bool ready);
  const std::string &active () const { return active_; }

  /* ---- function calls ---- */
  /* Records a response's calls; returns those not seen before. */
  std::vector<FunctionCall> add_calls (const std::string &response_id,
      const std::vector<FunctionCall> &calls);
  enum class OutputResult { Taken, Unknown, AlreadyAnswered };
  OutputResult set_output (const std::string &call_id, const std::string &output);
  /* Batches whose response is done and every call answered, forgotten. */
  std::vector<Outputs> take_complete_batches ();

  /* ---- session.update and the drain's barrier ---- */
  void update_sent () { updates_sent_++; }
  void update_acked () { updates_acked_++; }
  /* The drain wants a barrier after the last audio. */
  void owe_barrier () { barrier_owed_ = true; }
  bool barrier_owed () const { return barrier_owed_; }
  /* The barrier is the update just sent. */
  void barrier_sent () { barrier_ = updates_sent_; barrier_owed_ = false; }

  /* ---- a lost session ---- */
  /* Settles the books: returns the response it cut (empty if none).
   * Requests for turns are forgotten, the others (the cut one included)
   * queued again; calls are forgotten (the new session would not know their
   * IDs); the update count restarts, and while `draining` a barrier
   * awaited is owed again. */
  std::string session_lost (bool draining);
  /* A rollover between turns: only the update count restarts. */
  void session_replaced () { updates_sent_ = 1; updates_acked_ = 0; }

  /* Anything still to come back from the service (the drain waits). */
  bool outstanding () const;

 private:
  struct Batch {
    std::string response_id;
    std::vector<std::string> call_ids;
    std::map<std::string, std::string> outputs;
    bool response_done = false;
  };

  bool speech_open_ = false;
  std::deque<bool> expected_;          /* for_turn of each, oldest first */
  std::deque<Request> queued_;
  std::string active_;
  bool active_for_turn_ = false;
  std::vector<Batch> batches_;
  /* Update #1 is the initial one of each session. */
  guint updates_sent_ = 1;
  guint updates_acked_ = 0;
  guint barrier_ = 0;                  /* its number among the updates; 0 = none */
  bool barrier_owed_ = false;
};

}  // namespace yrt
