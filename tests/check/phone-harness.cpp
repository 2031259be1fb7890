/* The phone suite's tools (phone-harness.h): processes, baresip's control
 * socket, raw SIP and the RTP sniffer. */
#include "phone-harness.h"

#include <arpa/inet.h>
#include <gst/check/gstcheck.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace yrt::phone {

/* Whether `port` can be bound on 127.0.0.1 for both UDP and TCP now. */
static bool port_free (guint port)
{
  GInetAddress *lo = g_inet_address_new_from_string ("127.0.0.1");
  GSocketAddress *a = g_inet_socket_address_new (lo, (guint16) port);
  GSocket *udp = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, nullptr);
  GSocket *tcp = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
  bool ok = g_socket_bind (udp, a, FALSE, nullptr) && g_socket_bind (tcp, a, FALSE, nullptr);
  g_object_unref (tcp);
  g_object_unref (udp);
  g_object_unref (a);
  g_object_unref (lo);
  return ok;
}

guint free_port (bool with_next)
{
  /* Below the ephemeral range (32768 and up on Linux), where the system
   * never hands a port out by itself: a port chosen here and bound a moment
   * later by baresip is not taken meanwhile by some client socket on the
   * machine.  Each port once per test process. */
  static std::vector<guint> given;
  static GRand *rand = g_rand_new ();
  for (int attempt = 0; attempt < 1000; attempt++) {
    guint port = (guint) g_rand_int_range (rand, 20000, 32000);
    auto taken = [] (guint p) { return std::find (given.begin (), given.end (), p) != given.end (); };
    if (taken (port) || (with_next && taken (port + 1)) || !port_free (port) || (with_next && !port_free (port + 1)))
      continue;
    given.push_back (port);
    if (with_next)
      given.push_back (port + 1);
    return port;
  }
  fail ("no free port on 127.0.0.1");
  return 0;
}

void write_wav (const std::string &path, const std::vector<gint16> &mono, guint rate, guint channels)
{
  std::vector<gint16> pcm;
  for (gint16 v : mono)
    pcm.insert (pcm.end (), channels, v);
  std::string out ("RIFF....WAVEfmt ", 16);
  auto u32 = [&out] (guint32 v) { out.append ((const char *) &v, 4); };
  auto u16 = [&out] (guint16 v) { out.append ((const char *) &v, 2); };
  u32 (16), u16 (1), u16 ((guint16) channels), u32 (rate), u32 (rate * 2 * channels), u16 ((guint16) (2 * channels)),
      u16 (16);
  out += "data";
  u32 ((guint32) (pcm.size () * 2));
  out.append ((const char *) pcm.data (), pcm.size () * 2);
  guint32 riff = (guint32) out.size () - 8;
  memcpy (&out[4], &riff, 4);
  fail_unless (g_file_set_contents (path.c_str (), out.data (), (gssize) out.size (), nullptr));
}

std::vector<gint16> read_wav (const std::string &path, guint *rate, guint channel)
{
  gchar *wav = nullptr;
  gsize size = 0;
  fail_unless (g_file_get_contents (path.c_str (), &wav, &size, nullptr), "cannot read %s", path.c_str ());
  std::vector<gint16> pcm;
  *rate = 0;
  guint16 channels = 1;
  for (gsize pos = 12; pos + 8 <= size;) {
    guint32 len;
    memcpy (&len, wav + pos + 4, 4);
    if (memcmp (wav + pos, "fmt ", 4) == 0 && pos + 16 <= size) {
      memcpy (&channels, wav + pos + 10, 2);
      memcpy (rate, wav + pos + 12, 4);
    }
    if (memcmp (wav + pos, "data", 4) == 0) {
      len = (guint32) MIN ((gsize) len, size - pos - 8);  /* a dump still being written says 0 or more */
      if (len == 0)
        len = (guint32) (size - pos - 8);
      pcm.resize (len / 2);
      memcpy (pcm.data (), wav + pos + 8, pcm.size () * 2);
      break;
    }
    pos += 8 + len + (len & 1);
  }
  g_free (wav);
  fail_unless (channel < channels, "%s has %u channels", path.c_str (), channels);
  if (channels > 1) {
    for (gsize i = 0; i < pcm.size () / channels; i++)
      pcm[i] = pcm[i * channels + channel];
    pcm.resize (pcm.size () / channels);
  }
  return pcm;
}

/* ---- children ---- */

static void child_setup (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
  int priority = *static_cast<int *> (data);
  struct sched_param param = {};
  param.sched_priority = priority;
  if (priority > 0)
    sched_setscheduler (0, SCHED_RR, &param);  /* real_time () checked that it may */
}

void Child::spawn (const std::vector<std::string> &argv, const std::vector<std::pair<std::string, std::string>> &env)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_stdout_file_path (launcher, log.c_str ());
  g_subprocess_launcher_set_child_setup (launcher, child_setup, &rt_priority, nullptr);
  for (auto &kv : env)
    g_subprocess_launcher_setenv (launcher, kv.first.c_str (), kv.second.c_str (), TRUE);
  std::vector<const gchar *> args;
  for (auto &a : argv)
    args.push_back (a.c_str ());
  args.push_back (nullptr);
  GError *error = nullptr;
  proc = g_subprocess_launcher_spawnv (launcher, args.data (), &error);
  g_object_unref (launcher);
  fail_unless (proc != nullptr, "cannot start %s: %s", argv[0].c_str (), error ? error->message : "?");
}

std::string Child::text () const
{
  gchar *t = nullptr;
  std::string out;
  if (g_file_get_contents (log.c_str (), &t, nullptr, nullptr))
    out = t;
  g_free (t);
  return out;
}

bool Child::wait_for (const std::string &what, guint timeout_ms) const
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  while (text ().find (what) == std::string::npos) {
    if (g_get_monotonic_time () > deadline)
      return false;
    g_usleep (10 * 1000);
  }
  return true;
}

int Child::wait_exit (guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  while (proc && g_subprocess_get_identifier (proc)) {  /* NULL once it exited */
    fail_unless (g_get_monotonic_time () < deadline, "%s did not exit within %u ms:\n%s", log.c_str (), timeout_ms,
        text ().c_str ());
    g_usleep (10 * 1000);
  }
  return stop ();  /* no signal reaches a process that has exited: only the wait */
}

int Child::stop ()
{
  if (!proc)
    return 0;
  g_subprocess_send_signal (proc, SIGTERM);
  g_subprocess_wait (proc, nullptr, nullptr);
  int status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  g_clear_object (&proc);
  return status;
}

void Phone::start (const std::string &exe, const std::string &dir, const std::string &location,
    const std::vector<std::string> &extra, const std::vector<std::pair<std::string, std::string>> &env)
{
  port = free_port ();
  log = dir + "/phone.log";
  /* --rt-priority: the line's packets on time on a busy machine (CI runs
   * this as root; elsewhere the phone says it could not, and goes on). */
  std::vector<std::string> argv = {exe, "--listen", "127.0.0.1:" + std::to_string (port), "--location", location,
      "--rt-priority", "10"};
  argv.insert (argv.end (), extra.begin (), extra.end ());
  /* The key the emulator wants: in the environment, never on the command line. */
  std::vector<std::pair<std::string, std::string>> vars = {{"YANDEX_CLOUD_API_KEY", "phone-test-key"}};
  vars.insert (vars.end (), env.begin (), env.end ());
  spawn (argv, vars);
  fail_unless (wait_for ("listening on sip:127.0.0.1:" + std::to_string (port), 10000),
      "the phone did not start (%s):\n%s", g_subprocess_get_identifier (proc) ? "still running" : "exited",
      text ().c_str ());
}

/* ---- baresip ---- */

bool Baresip::real_time ()
{
  /* Whether this process may: a thread of its own tries. */
  int err = 0;
  std::thread ([&err] {
    struct sched_param param = {};
    param.sched_priority = 5;
    err = pthread_setschedparam (pthread_self (), SCHED_RR, &param);
  }).join ();
  rt_priority = err ? 0 : 5;
  return !err;
}

Baresip::~Baresip ()
{
  g_clear_object (&ctrl);
}

void Baresip::start (const std::string &d, const std::string &wav, const std::vector<std::string> &codecs,
    const std::string &user)
{
  dir = d;
  fail_unless (g_mkdir_with_parents ((dir + "/rec").c_str (), 0700) == 0);
  sip_port = free_port (true);  /* baresip takes the next for SIP over TLS */
  ctrl_port = free_port ();
  /* No audio_player and no sound card module: headless.  Only the account
   * written here (auto-answer, no REGISTER): never the default file, which
   * names a public SIP host. */
  std::string config = "poll_method epoll\n"
      "sip_listen 127.0.0.1:" + std::to_string (sip_port) + "\n"
      "net_interface 127.0.0.1\n"
      "audio_source aufile," + wav + "\n"
      "module_path /usr/lib/baresip/modules\n";
  for (auto &c : codecs)
    config += "module " + c + ".so\n";
  config += "module aufile.so\nmodule sndfile.so\nmodule_app menu.so\nmodule ctrl_tcp.so\n"
      "module_tmp account.so\n"
      "ctrl_tcp_listen 127.0.0.1:" + std::to_string (ctrl_port) + "\n"
      "snd_path " + dir + "/rec\n";
  fail_unless (g_file_set_contents ((dir + "/config").c_str (), config.c_str (), -1, nullptr));
  std::string account = "<sip:" + user + "@127.0.0.1:" + std::to_string (sip_port) + ">;regint=0;answermode=auto\n";
  fail_unless (g_file_set_contents ((dir + "/accounts").c_str (), account.c_str (), -1, nullptr));
  log = dir + "/baresip.log";
  spawn ({"baresip", "-f", dir, "-t", "120"}, {});

  GSocketClient *client = g_socket_client_new ();
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (!ctrl && g_get_monotonic_time () < deadline) {
    ctrl = g_socket_client_connect_to_host (client, ("127.0.0.1:" + std::to_string (ctrl_port)).c_str (), 0,
        nullptr, nullptr);
    if (!ctrl)
      g_usleep (20 * 1000);
  }
  g_object_unref (client);
  fail_unless (ctrl != nullptr, "baresip's ctrl_tcp did not come up:\n%s", text ().c_str ());
}

void Baresip::command (const std::string &cmd, const std::string &params)
{
  std::string json = "{\"command\":\"" + cmd + "\",\"params\":\"" + params + "\",\"token\":\"t\"}";
  std::string netstring = std::to_string (json.size ()) + ":" + json + ",";
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (ctrl));
  fail_unless (g_output_stream_write_all (out, netstring.data (), netstring.size (), nullptr, nullptr, nullptr));
}

/* Reads what came within timeout_ms; each whole netstring that is an event
 * becomes "TYPE param".  FALSE when nothing came. */
bool Baresip::read_events (guint timeout_ms)
{
  GSocket *s = g_socket_connection_get_socket (ctrl);
  if (!g_socket_condition_timed_wait (s, G_IO_IN, (gint64) timeout_ms * 1000, nullptr, nullptr))
    return false;
  char buf[4096];
  gssize n = g_socket_receive (s, buf, sizeof buf, nullptr, nullptr);
  if (n <= 0)
    return false;
  pending.append (buf, (gsize) n);
  for (;;) {
    gsize colon = pending.find (':');
    if (colon == std::string::npos)
      break;
    gsize len = (gsize) atoi (pending.substr (0, colon).c_str ());
    if (pending.size () < colon + 1 + len + 1)
      break;
    std::string json = pending.substr (colon + 1, len);
    pending.erase (0, colon + 1 + len + 1);
    JsonParser *p = json_parser_new ();
    if (json_parser_load_from_data (p, json.c_str (), (gssize) json.size (), nullptr) &&
        JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p))) {
      JsonObject *o = json_node_get_object (json_parser_get_root (p));
      if (json_object_get_boolean_member_with_default (o, "event", FALSE))
        events.push_back (std::string (json_object_get_string_member_with_default (o, "type", "")) + " " +
            json_object_get_string_member_with_default (o, "param", ""));
    }
    g_object_unref (p);
  }
  return true;
}

std::string Baresip::wait_event (const std::string &type, guint timeout_ms, gsize *index)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  gsize from = index ? *index : 0;
  for (;;) {
    for (gsize i = from; i < events.size (); i++)
      if (events[i].compare (0, type.size () + 1, type + " ") == 0) {
        if (index)
          *index = i + 1;
        return events[i].substr (type.size () + 1);
      }
    gint64 left = deadline - g_get_monotonic_time ();
    fail_unless (left > 0, "baresip reported no %s within %u ms; events: %zu; log:\n%s", type.c_str (),
        timeout_ms, events.size (), text ().c_str ());
    read_events ((guint) (left / 1000 + 1));
  }
}

std::string Baresip::dump (const char *kind) const
{
  GDir *d = g_dir_open ((dir + "/rec").c_str (), 0, nullptr);
  std::string found;
  const gchar *name;
  while (d && (name = g_dir_read_name (d)))
    if (g_str_has_suffix (name, (std::string ("-") + kind + ".wav").c_str ()))
      found = dir + "/rec/" + name;
  if (d)
    g_dir_close (d);
  fail_unless (!found.empty (), "baresip wrote no %s dump", kind);
  return found;
}

/* ---- RTP sniffer ---- */

static gint mulaw_decode (guint8 byte)
{
  guint8 u = (guint8) ~byte;
  gint magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 7)) - 0x84;
  return (u & 0x80) ? -magnitude : magnitude;
}

bool RtpSniffer::start ()
{
  fd = socket (AF_PACKET, SOCK_DGRAM, htons (ETH_P_IP));
  if (fd < 0) {
    why_not = std::string ("an AF_PACKET socket: ") + g_strerror (errno) + " (needs CAP_NET_RAW)";
    return false;
  }
  struct sockaddr_ll sll = {};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons (ETH_P_IP);
  sll.sll_ifindex = (int) if_nametoindex ("lo");
  fail_unless (bind (fd, (struct sockaddr *) &sll, sizeof sll) == 0, "bind to lo: %s", g_strerror (errno));
  /* UDP only (the WebSocket's TCP would crowd the buffer), arriving only
   * (on lo each packet shows twice: going out, and arriving; the kernel
   * queued both, and 20 calls' worth overflowed the buffer once), and room
   * for seconds of it while this thread waits for a core. */
  struct sock_filter udp_only[] = {
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, (guint32) (SKF_AD_OFF + SKF_AD_PKTTYPE)),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 3, 0),
    BPF_STMT (BPF_LD | BPF_B | BPF_ABS, 9),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 1),
    BPF_STMT (BPF_RET | BPF_K, 0xffff),
    BPF_STMT (BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {G_N_ELEMENTS (udp_only), udp_only};
  fail_unless (setsockopt (fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0, "%s", g_strerror (errno));
  int size = 8 << 20, on = 1;
  setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  fail_unless (setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0, "%s", g_strerror (errno));
  realtime_offset = g_get_real_time () - g_get_monotonic_time ();
  thread = std::thread ([this] {
    /* Real-time when allowed (CI runs as root), as the phone's threads: it
     * drains the queue as the packets come, whatever else runs. */
    struct sched_param param = {};
    param.sched_priority = 5;  /* under the phone's (10), beside baresip's */
    pthread_setschedparam (pthread_self (), SCHED_RR, &param);
    guint8 buf[2048];
    while (!stopping) {
      struct pollfd p = {fd, POLLIN, 0};
      if (poll (&p, 1, 50) <= 0)
        continue;
      struct sockaddr_ll from = {};
      char control[256];
      struct iovec iov = {buf, sizeof buf};
      struct msghdr msg = {};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      gssize n = recvmsg (fd, &msg, 0);
      /* The kernel's arrival time, not this thread's: under load it may
       * wake up long after a packet came. */
      gint64 now = g_get_monotonic_time ();
      for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c; c = CMSG_NXTHDR (&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
          struct timespec ts;
          memcpy (&ts, CMSG_DATA (c), sizeof ts);
          now = (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000 - realtime_offset;
        }
      /* On lo each packet shows twice: going out, and arriving. */
      if (n < 20 || from.sll_pkttype == PACKET_OUTGOING)
        continue;
      gsize ihl = (gsize) (buf[0] & 0x0f) * 4;
      if (buf[9] != 17 || (gsize) n < ihl + 8 + 12)
        continue;
      const guint8 *udp = buf + ihl, *rtp = udp + 8;
      if ((rtp[0] >> 6) != 2 || ((rtp[1] & 0x7f) >= 72 && (rtp[1] & 0x7f) <= 76))  /* not RTP, or RTCP */
        continue;
      RtpPacket pk;
      pk.arrival_us = now;
      pk.src_port = (guint16) (udp[0] << 8 | udp[1]);
      pk.dst_port = (guint16) (udp[2] << 8 | udp[3]);
      pk.pt = rtp[1] & 0x7f;
      pk.marker = rtp[1] & 0x80;
      pk.seq = (guint16) (rtp[2] << 8 | rtp[3]);
      pk.ts = (guint32) rtp[4] << 24 | (guint32) rtp[5] << 16 | (guint32) rtp[6] << 8 | rtp[7];
      pk.ssrc = (guint32) rtp[8] << 24 | (guint32) rtp[9] << 16 | (guint32) rtp[10] << 8 | rtp[11];
      pk.payload_size = (guint) ((gsize) n - ihl - 8 - 12);
      pk.peak = 0;
      pk.first_loud = -1;
      for (guint i = 0; pk.pt == 0 && i < pk.payload_size; i++) {
        gint v = std::abs (mulaw_decode (rtp[12 + i]));
        pk.peak = MAX (pk.peak, v);
        if (v > 2000 && pk.first_loud < 0)
          pk.first_loud = (gint) i;
        pk.pcm.push_back ((gint16) mulaw_decode (rtp[12 + i]));
      }
      std::lock_guard<std::mutex> l (lock);
      packets.push_back (pk);
    }
  });
  return true;
}

void RtpSniffer::stop ()
{
  stopping = true;
  if (thread.joinable ())
    thread.join ();
  if (fd >= 0) {
    struct tpacket_stats stats = {};
    socklen_t len = sizeof stats;
    if (getsockopt (fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0)
      dropped += stats.tp_drops;
    close (fd);
  }
  fd = -1;
}

std::vector<gint16> rtp_pcm (const std::vector<RtpPacket> &packets)
{
  std::vector<gint16> pcm;
  for (auto &p : packets) {
    gsize at = (guint32) (p.ts - packets[0].ts);
    if (at > 100 * 8000)  /* before the first (reordered), or absurd */
      continue;
    if (pcm.size () < at + p.pcm.size ())
      pcm.resize (at + p.pcm.size ());
    std::copy (p.pcm.begin (), p.pcm.end (), pcm.begin () + (gssize) at);
  }
  return pcm;
}

std::vector<RtpPacket> RtpSniffer::to_port (guint16 dst_port) const
{
  std::lock_guard<std::mutex> l (lock);
  std::vector<RtpPacket> out;
  for (auto &p : packets)
    if (p.dst_port == dst_port)
      out.push_back (p);
  return out;
}

std::vector<RtpPacket> RtpSniffer::from_port (guint16 src_port) const
{
  std::lock_guard<std::mutex> l (lock);
  std::vector<RtpPacket> out;
  for (auto &p : packets)
    if (p.src_port == src_port)
      out.push_back (p);
  return out;
}

/* ---- raw SIP ---- */

void RawSip::open (guint port, bool over_tcp)
{
  tcp = over_tcp;
  remote_port = port;
  GInetAddress *lo = g_inet_address_new_from_string ("127.0.0.1");
  GSocketAddress *local = g_inet_socket_address_new (lo, 0), *remote = g_inet_socket_address_new (lo, (guint16) port);
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, tcp ? G_SOCKET_TYPE_STREAM : G_SOCKET_TYPE_DATAGRAM,
      tcp ? G_SOCKET_PROTOCOL_TCP : G_SOCKET_PROTOCOL_UDP, nullptr);
  fail_unless (g_socket_bind (socket, local, FALSE, nullptr));
  fail_unless (g_socket_connect (socket, remote, nullptr, nullptr), "cannot reach the phone on port %u", port);
  GSocketAddress *bound = g_socket_get_local_address (socket, nullptr);
  local_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_object_unref (bound);
  g_object_unref (local);
  g_object_unref (remote);
  g_object_unref (lo);
}

RawSip::~RawSip ()
{
  g_clear_object (&socket);
}

void RawSip::send (const std::string &request)
{
  fail_unless (g_socket_send (socket, request.data (), request.size (), nullptr, nullptr) == (gssize) request.size ());
}

/* TCP: the first whole message of what was read (its Content-Length
 * says where it ends), or "". */
static std::string take_message (std::string &pending)
{
  gsize head_end = pending.find ("\r\n\r\n");
  if (head_end == std::string::npos)
    return "";
  std::string head = pending.substr (0, head_end + 2);
  std::string length = header (head, "Content-Length");
  if (length.empty ())
    length = header (head, "l");
  gsize total = head_end + 4 + (gsize) atoi (length.c_str ());
  if (pending.size () < total)
    return "";
  std::string message = pending.substr (0, total);
  pending.erase (0, total);
  return message;
}

std::string RawSip::receive (guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  for (;;) {
    std::string message = tcp ? take_message (pending) : "";
    gint64 left = deadline - g_get_monotonic_time ();
    if (!message.empty () || left <= 0 ||
        !g_socket_condition_timed_wait (socket, G_IO_IN, left, nullptr, nullptr))
      return message;
    char buf[8192];
    gssize n = g_socket_receive (socket, buf, sizeof buf, nullptr, nullptr);
    if (n <= 0)
      return "";
    if (!tcp)
      return std::string (buf, (gsize) n);
    pending.append (buf, (gsize) n);  /* a stream: messages may come together, or in pieces */
  }
}

int sip_status (const std::string &response)
{
  return g_str_has_prefix (response.c_str (), "SIP/2.0 ") ? atoi (response.c_str () + 8) : 0;
}

std::string RawSip::until_status (int min_status, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  for (;;) {
    gint64 left = deadline - g_get_monotonic_time ();
    if (left <= 0)
      return "";
    std::string r = receive ((guint) (left / 1000 + 1));
    if (sip_status (r) >= min_status)
      return r;
  }
}

/* ---- raw SIP dialogs ---- */

std::string sip_request (const RawSip &sip, const std::string &method, const Dialog &d, const std::string &to_tag,
    const std::string &sdp, guint cseq, const std::string &content_type)
{
  std::string transport = sip.tcp ? "TCP" : "UDP", local = "127.0.0.1:" + std::to_string (sip.local_port);
  std::string target = "sip:agent@127.0.0.1:" + std::to_string (sip.remote_port);
  std::string r = method + " " + target + " SIP/2.0\r\n"
      "Via: SIP/2.0/" + transport + " " + local + ";branch=" + d.branch + ";rport\r\n"
      "Max-Forwards: 70\r\n"
      "From: <sip:tester@" + local + ">;tag=" + d.from_tag + "\r\n"
      "To: <" + target + ">" + (to_tag.empty () ? "" : ";tag=" + to_tag) + "\r\n"
      "Call-ID: " + d.call_id + "\r\n"
      "CSeq: " + std::to_string (cseq) + " " + method + "\r\n"
      "Contact: <sip:tester@" + local + (sip.tcp ? ";transport=tcp" : "") + ">\r\n";
  if (!sdp.empty ())
    r += "Content-Type: " + content_type + "\r\n";
  r += "Content-Length: " + std::to_string (sdp.size ()) + "\r\n\r\n" + sdp;
  return r;
}

Dialog new_dialog (const char *name)
{
  static int n = 0;
  Dialog d;
  d.call_id = std::string (name) + "-" + std::to_string (++n) + "@127.0.0.1";
  d.from_tag = "t" + std::to_string (n);
  d.branch = "z9hG4bK-" + std::string (name) + std::to_string (n);
  return d;
}

std::string offer (const std::string &codecs_line, const std::string &rtpmaps, guint port, guint version)
{
  return "v=0\r\no=tester 1 " + std::to_string (version) + " IN IP4 127.0.0.1\r\ns=test\r\n"
      "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " + std::to_string (port) + " RTP/AVP " + codecs_line + "\r\n" +
      rtpmaps;
}

/* A UDP socket on 127.0.0.1 that takes a call's RTP. */
GSocket *rtp_socket (guint *port)
{
  *port = free_port ();
  GInetAddress *lo = g_inet_address_new_from_string ("127.0.0.1");
  GSocketAddress *a = g_inet_socket_address_new (lo, (guint16) *port);
  GSocket *s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, nullptr);
  fail_unless (g_socket_bind (s, a, FALSE, nullptr));
  g_object_unref (a);
  g_object_unref (lo);
  return s;
}

/* Waits for an RTP packet of payload type `pt` on `s`. */
bool rtp_arrives (GSocket *s, guint pt, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  for (;;) {
    gint64 left = deadline - g_get_monotonic_time ();
    if (left <= 0 || !g_socket_condition_timed_wait (s, G_IO_IN, left, nullptr, nullptr))
      return false;
    guint8 buf[2048];
    gssize n = g_socket_receive (s, (gchar *) buf, sizeof buf, nullptr, nullptr);
    if (n >= 12 && (buf[0] >> 6) == 2 && (buf[1] & 0x7f) == pt)
      return true;
  }
}

std::string header (const std::string &msg, const std::string &name)
{
  gsize at = msg.find ("\r\n" + name + ":");
  if (at == std::string::npos)
    return "";
  gsize from = at + 2 + name.size () + 1, to = msg.find ("\r\n", from);
  std::string v = msg.substr (from, to - from);
  return v.substr (v.find_first_not_of (' '));
}

std::string to_tag (const std::string &response)
{
  std::string to = header (response, "To");
  gsize at = to.find (";tag=");
  return at == std::string::npos ? "" : to.substr (at + 5);
}

/* The INVITE's final response (>= 300) wants an ACK in the same transaction. */
void ack (RawSip &sip, const Dialog &d, const std::string &final_response)
{
  sip.send (sip_request (sip, "ACK", d, to_tag (final_response), "", d.cseq));
}

/* A socket that takes TCP connections and never answers: a service whose
 * WebSocket handshake never completes (the call rings until CANCEL). */
GSocket *silent_service (guint *port)
{
  *port = free_port ();
  GInetAddress *lo = g_inet_address_new_from_string ("127.0.0.1");
  GSocketAddress *a = g_inet_socket_address_new (lo, (guint16) *port);
  GSocket *s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
  fail_unless (g_socket_bind (s, a, TRUE, nullptr) && g_socket_listen (s, nullptr));
  g_object_unref (a);
  g_object_unref (lo);
  return s;
}

}  // namespace yrt::phone
