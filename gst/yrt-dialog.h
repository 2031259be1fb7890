/* Dialog: one conversation with the service, as the element sees it.  A
 * facade over its two halves: the session's life (yrt-session.h: connect,
 * reconnect, roll over, configure each new session and give it what it
 * needs to carry on) and the conversation (yrt-conversation.h: what each
 * server event means, barge-in, the EOS drain, the action signals).
 *
 * Threads: send_audio(), drain() and set_flushing() come from the streaming
 * thread; server events arrive on the connection's worker thread; the
 * control from any thread; all meet under the session's lock.  Nothing here
 * touches pads or builds messages: what the application hears goes out as
 * output events (yrt-output.h). */
#pragma once

#include "yrt-conversation.h"
#include "yrt-host.h"
#include "yrt-playout.h"
#include "yrt-protocol.h"
#include "yrt-session.h"

#include <gst/gst.h>

#include <string>

namespace yrt {

/* `location` plus `model=gpt://<folder>/<model>` unless it already has one. */
std::string endpoint_url (const std::string &location, const std::string &folder_id,
    const std::string &model);

class Dialog {
 public:
  using SendResult = Session::SendResult;

  /* `log_object` (the element) names every log line of this dialog. */
  Dialog (DialogHost &host, Playout &playout, GstObject *log_object);
  ~Dialog ();

  /* READY→PAUSED: starts connecting; returns at once. */
  void open (const Endpoint &endpoint, const SessionConfig &config,
      const DialogOptions &options);
  /* PAUSED→READY: closes the socket and wakes every waiter. */
  void close () { session_.close (); }

  /* Streaming thread.  Waits (bounded) while the session is not yet
   * configured and the pre-session queue is full. */
  SendResult send_audio (const guint8 *pcm, gsize size)
  {
    return session_.send_audio (pcm, size);
  }
  /* After the last audio: commit what needs it, then EOS on the playout once
   * every answer is in (or eos-timeout-ms passed). */
  void drain () { conversation_.drain (); }
  void set_flushing (bool flushing);
  void set_live (bool live) { session_.set_live (live); }
  DialogStats stats () const;

  /* Any thread: conversation control (the element's properties and action
   * signals).  Each returns false, logging why, when it cannot act. */
  void update_session (const SessionConfig &config) { session_.update_session (config); }
  void set_barge_in (bool enabled) { conversation_.set_barge_in (enabled); }
  bool send_function_output (const std::string &call_id, const std::string &output)
  {
    return conversation_.send_function_output (call_id, output);
  }
  bool send_text (const std::string &text) { return conversation_.send_text (text); }
  bool commit () { return conversation_.commit (); }
  /* Streaming thread: whether `commit` was asked for since the last call;
   * if so, send the partial chunk, then commit_now(). */
  bool take_commit_request () { return conversation_.take_commit_request (); }
  void commit_now () { conversation_.commit_now (); }
  bool create_response (const char *instructions)
  {
    return conversation_.create_response (instructions);
  }
  bool cancel_response () { return conversation_.cancel_response (); }
  bool clear_input () { return conversation_.clear_input (); }
  bool clear_conversation () { return conversation_.clear_conversation (); }

 private:
  Session session_;
  Conversation conversation_;
};

}  // namespace yrt
