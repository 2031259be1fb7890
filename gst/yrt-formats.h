/* Formats: the audio rates the element asks the service for, and the ones
 * the service says it uses.  The service's word is final: session.created and
 * session.updated report the effective formats, and an error about a format
 * refuses what was asked, after which the element asks for the rate Yandex
 * documents.  No I/O: the Dialog acts on what this decides. */
#pragma once

#include "yrt-protocol.h"

#include <optional>

namespace yrt {

/* What Yandex documents and every official example uses. */
constexpr guint kDocumentedOutputRate = 44100;
constexpr guint kDocumentedInputRate = 24000;

/* An asked rate the service refused, and the one asked for instead. */
struct RateRefusal {
  bool output = true;  /* else the input rate */
  guint refused = 0;
  guint fallback = 0;
};

class ServiceFormats {
 public:
  /* What the user (or the defaults) want asked for. */
  void configure (guint input_rate, guint output_rate);
  guint asked_input () const { return asked_input_; }
  guint asked_output () const { return asked_output_; }

  /* session.created / session.updated of a session.  A format the event
   * does not state is taken to be what was asked. */
  void reported (const AudioFormat &input, const AudioFormat &output);
  /* The rate answers arrive at, and the rate the service takes input at. */
  guint served_output () const { return served_output_ ? served_output_ : asked_output_; }
  guint accepted_input () const { return accepted_input_ ? accepted_input_ : asked_input_; }

  /* An error answering a session.update: when it refuses an asked rate that
   * has a documented fallback, that fallback is asked from now on. */
  std::optional<RateRefusal> refused (const ServerError &error);

 private:
  guint asked_input_ = kDocumentedInputRate;
  guint asked_output_ = kDocumentedOutputRate;
  guint served_output_ = 0;   /* 0: as asked */
  guint accepted_input_ = 0;  /* 0: as asked */
};

/* Whether an error is about the input or output audio format (its param,
 * else its message, names it). */
bool names_format (const ServerError &error, bool output);

}  // namespace yrt
