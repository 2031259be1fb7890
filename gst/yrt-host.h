/* What a dialog is given and what it gives back: the element it runs in
 * (DialogHost), where to connect (Endpoint), its options and its stats.
 * Shared by the facade (yrt-dialog.h) and its two halves, the session's
 * life (yrt-session.h) and the conversation (yrt-conversation.h). */
#pragma once

#include "yrt-connection.h"
#include "yrt-output.h"

#include <gst/gst.h>

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
  /* Barge-in: downstream drops what it still holds of the answer, now. */
  virtual void flush_downstream () = 0;
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

}  // namespace yrt
