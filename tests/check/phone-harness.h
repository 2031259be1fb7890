/* The phone suite's tools: the yandexrealtime-phone program, Debian's
 * baresip as a real softphone (its own config directory, driven over its
 * ctrl_tcp netstring JSON), a raw SIP client for what baresip cannot send,
 * and an RTP sniffer that timestamps the packets arriving at the caller
 * (an AF_PACKET socket on lo: needs CAP_NET_RAW).  Everything runs on
 * 127.0.0.1. */
#pragma once

#include <gio/gio.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace yrt::phone {

/* A free port on 127.0.0.1 for both UDP and TCP (bound, then let go); with
 * `with_next`, the next one is free too. */
guint free_port (bool with_next = false);

/* Writes S16 at `rate` as a WAV file, the mono `pcm` in each of `channels`. */
void write_wav (const std::string &path, const std::vector<gint16> &pcm, guint rate, guint channels = 1);
/* Reads an S16 WAV file: one of its channels (the first by default); its
 * rate into *rate. */
std::vector<gint16> read_wav (const std::string &path, guint *rate, guint channel = 0);

/* A child process whose stdout and stderr go to a log file. */
struct Child {
  GSubprocess *proc = nullptr;
  std::string log;
  int rt_priority = 0;  /* > 0: the child runs under SCHED_RR at it, when allowed */
  ~Child () { stop (); }
  void spawn (const std::vector<std::string> &argv, const std::vector<std::pair<std::string, std::string>> &env);
  std::string text () const;  /* the log so far */
  /* Waits until the log holds `what`; FALSE after timeout_ms. */
  bool wait_for (const std::string &what, guint timeout_ms) const;
  /* SIGTERM, then waits; the exit status (-1: killed by a signal). */
  int stop ();
  /* Waits for it to exit by itself (within timeout_ms, else fails); the
   * exit status. */
  int wait_exit (guint timeout_ms);
};

/* yandexrealtime-phone against `location`, listening on 127.0.0.1:port. */
struct Phone : Child {
  guint port = 0;
  void start (const std::string &exe, const std::string &dir, const std::string &location,
      const std::vector<std::string> &extra = {}, const std::vector<std::pair<std::string, std::string>> &env = {});
};

/* baresip with a config of its own in `dir`: auto-answers, plays `wav` as
 * its microphone (hanging up at its end), dumps what it sent and heard into
 * dir/rec. */
struct Baresip : Child {
  std::string dir;
  guint sip_port = 0, ctrl_port = 0;
  GSocketConnection *ctrl = nullptr;
  std::string pending;               /* bytes read, not yet a whole netstring */
  std::vector<std::string> events;   /* "TYPE param" of each event, in order */
  ~Baresip ();
  void start (const std::string &dir, const std::string &wav, const std::vector<std::string> &codecs,
      const std::string &user = "caller");
  /* Before start: baresip sends its audio on time under load (SCHED_RR, as
   * the phone's own threads; needs CAP_SYS_NICE, which CI has as root).
   * False when not allowed: it runs as it is. */
  bool real_time ();
  void command (const std::string &cmd, const std::string &params);
  /* Waits for an event of `type` (after any already seen when `from` says
   * so); its param, or fails. */
  std::string wait_event (const std::string &type, guint timeout_ms, gsize *index = nullptr);
  bool read_events (guint timeout_ms);
  std::string dump (const char *kind) const;  /* dir/rec/dump-*-KIND.wav of the call */
};

/* One RTP packet as it arrived. */
struct RtpPacket {
  gint64 arrival_us;  /* monotonic */
  guint16 src_port, dst_port;
  guint8 pt;
  bool marker;
  guint16 seq;
  guint32 ts, ssrc;
  guint payload_size;
  gint peak;  /* PCMU (PT 0): the loudest sample, decoded; else 0 */
  gint first_loud;  /* PCMU: the first sample louder than 2000, or -1 */
  std::vector<gint16> pcm;  /* PCMU: the payload, decoded */
};

/* What a PCMU stream carried, decoded and placed by its RTP timestamps
 * (from the first packet's; a sample no packet carried is 0). */
std::vector<gint16> rtp_pcm (const std::vector<RtpPacket> &packets);

/* Every UDP packet on lo that looks like RTP, with its arrival time. */
struct RtpSniffer {
  int fd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};
  mutable std::mutex lock;
  std::vector<RtpPacket> packets;
  std::string why_not;  /* set when it cannot run (no CAP_NET_RAW) */
  gint64 realtime_offset = 0;  /* real time - monotonic time, us */
  guint dropped = 0;    /* packets the kernel could not queue for it (known after stop ()) */
  bool start ();
  void stop ();
  std::vector<RtpPacket> to_port (guint16 dst_port) const;
  std::vector<RtpPacket> from_port (guint16 src_port) const;
  ~RtpSniffer () { stop (); }
};

/* A SIP request over UDP or TCP, and the responses to it (the final one last). */
struct RawSip {
  GSocket *socket = nullptr;
  bool tcp = false;
  guint local_port = 0;
  guint remote_port = 0;
  std::string pending;  /* TCP: read, not yet a whole message */
  void open (guint port, bool over_tcp);
  ~RawSip ();
  void send (const std::string &request);
  /* The next message within timeout_ms, or "". */
  std::string receive (guint timeout_ms);
  /* Reads until a response with status >= min_status; that response, or "". */
  std::string until_status (int min_status, guint timeout_ms);
};

int sip_status (const std::string &response);

/* ---- raw SIP: what baresip cannot send ---- */

/* The identifiers of a raw SIP dialog; `branch` is the transaction's. */
struct Dialog {
  std::string call_id, from_tag, branch;
  guint cseq = 1;
};
Dialog new_dialog (const char *name);
/* A request of `method` to the phone (the socket's peer) in dialog `d`,
 * with `body` (of `content_type`) when not empty. */
std::string sip_request (const RawSip &sip, const std::string &method, const Dialog &d, const std::string &to_tag,
    const std::string &body, guint cseq, const std::string &content_type = "application/sdp");
/* An SDP offer of one audio stream on 127.0.0.1:port. */
std::string offer (const std::string &codecs_line, const std::string &rtpmaps, guint port = 40000,
    guint version = 1);
/* A header's value ("" when absent). */
std::string header (const std::string &msg, const std::string &name);
std::string to_tag (const std::string &response);
/* The ACK of an INVITE's final response >= 300 (same transaction). */
void ack (RawSip &sip, const Dialog &d, const std::string &final_response);
/* A socket that takes TCP connections and never answers: a service whose
 * WebSocket handshake never completes. */
GSocket *silent_service (guint *port);
/* A UDP socket on 127.0.0.1 (a call's RTP, or a raw SIP peer). */
GSocket *rtp_socket (guint *port);
/* Waits for an RTP packet of payload type `pt` on `s`. */
bool rtp_arrives (GSocket *s, guint pt, guint timeout_ms);


}  // namespace yrt::phone
