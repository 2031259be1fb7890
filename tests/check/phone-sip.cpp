/* examples/phone's SIP beyond what baresip tells: registration, a call
 * over TCP with DTMF as SIP INFO, an outbound call nobody answers.
 *
 * - test_register: --register against a registrar written here (UDP on
 *   127.0.0.1: it challenges with 401 and a nonce, and checks each digest
 *   response against the password by RFC 2617, as a real registrar does,
 *   independently of sofia-sip's digest client).  The phone registers
 *   with a correct digest, refreshes before the granted 10 s run out
 *   (authenticated again), and un-REGISTERs on SIGTERM before it exits
 *   with 0; the password is in no SIP message and nowhere in the phone's
 *   output, nor is HA1 (SOFIA_DEBUG=9 too: sofia-sip's own log).
 * - test_tcp_call_with_info_dtmf: a whole call as raw SIP over one TCP
 *   connection; INFO application/dtmf-relay 7 and # reach the model as
 *   "The caller pressed 7, #."
 * - test_ring_timeout: --call to a peer that only rings: CANCEL at the
 *   2 s --ring-timeout, the phone says so and exits with 1.
 *
 * None judges audio; they run under ASan too (the phone's exit status carries
 * LeakSanitizer's verdict).  The registration's refresh and the ring
 * timeout are timed: run 20 times in a row under load before handing a
 * change over, e.g.
 *   for i in $(seq 20); do meson test -C build phone-sip || break; done
 * with `meson test -C build phone` looping beside it. */
#include "phone-calls.h"

#include <map>

using namespace yrt::test;
using namespace yrt::phone;
namespace emu = yrt::emu;

namespace {

std::string md5 (const std::string &s)
{
  gchar *hex = g_compute_checksum_for_string (G_CHECKSUM_MD5, s.c_str (), (gssize) s.size ());
  std::string out (hex);
  g_free (hex);
  return out;
}

/* The parameters of a Digest Authorization header (name → unquoted value). */
std::map<std::string, std::string> digest_params (const std::string &header_value)
{
  std::map<std::string, std::string> out;
  std::string v = header_value;
  if (v.compare (0, 7, "Digest ") != 0)
    return out;
  gsize at = 7;
  while (at < v.size ()) {
    while (at < v.size () && (v[at] == ' ' || v[at] == ','))
      at++;
    gsize eq = v.find ('=', at);
    if (eq == std::string::npos)
      break;
    std::string name = v.substr (at, eq - at), value;
    at = eq + 1;
    if (at < v.size () && v[at] == '"') {
      gsize end = v.find ('"', at + 1);
      value = v.substr (at + 1, end - at - 1);
      at = end + 1;
    } else {
      gsize end = v.find (',', at);
      value = v.substr (at, end == std::string::npos ? std::string::npos : end - at);
      at = end == std::string::npos ? v.size () : end;
    }
    out[name] = value;
  }
  return out;
}

/* A registrar on 127.0.0.1 (UDP): a challenge for a REGISTER without
 * credentials (or with another nonce), 403 for a wrong digest, 200 with
 * `expires` granted for a right one (expires 0: the binding goes). */
struct Registrar {
  GSocket *socket = nullptr;
  guint port = 0;
  std::string realm = "yrt-test.invalid", nonce, user, password;
  guint expires = 10;
  struct Request {
    std::string text;
    gint64 at_us;
    int status;          /* what we answered */
    bool removal;        /* expires=0 */
  };
  std::vector<Request> requests;

  Registrar (const std::string &u, const std::string &p) : user (u), password (p)
  {
    socket = rtp_socket (&port);
    nonce = "n" + std::to_string (g_random_int ()) + std::to_string (g_get_monotonic_time ());
  }
  ~Registrar () { g_clear_object (&socket); }
  std::string uri () const { return "sip:127.0.0.1:" + std::to_string (port); }

  /* RFC 2617 with qop=auth: MD5(HA1:nonce:nc:cnonce:qop:HA2). */
  bool digest_ok (const std::string &authorization) const
  {
    auto p = digest_params (authorization);
    if (p["username"] != user || p["realm"] != realm || p["nonce"] != nonce || p["qop"] != "auth")
      return false;
    std::string ha1 = md5 (user + ":" + realm + ":" + password), ha2 = md5 ("REGISTER:" + p["uri"]);
    return p["response"] == md5 (ha1 + ":" + nonce + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2);
  }

  /* Answers the next REGISTER within timeout_ms; false when none came. */
  bool serve (guint timeout_ms)
  {
    if (!g_socket_condition_timed_wait (socket, G_IO_IN, (gint64) timeout_ms * 1000, nullptr, nullptr))
      return false;
    char buf[8192];
    GSocketAddress *from = nullptr;
    gssize n = g_socket_receive_from (socket, &from, buf, sizeof buf, nullptr, nullptr);
    fail_unless (n > 0);
    Request r {std::string (buf, (gsize) n), g_get_monotonic_time (), 0, false};
    fail_unless (g_str_has_prefix (r.text.c_str (), "REGISTER "), "the registrar got: %s", r.text.c_str ());
    std::string contact = header (r.text, "Contact"), authorization = header (r.text, "Authorization");
    r.removal = header (r.text, "Expires") == "0" || contact.find ("expires=0") != std::string::npos;
    std::string extra;
    if (authorization.empty () || digest_params (authorization)["nonce"] != nonce) {
      r.status = 401;
      extra = "WWW-Authenticate: Digest realm=\"" + realm + "\", nonce=\"" + nonce +
          "\", algorithm=MD5, qop=\"auth\"\r\n";
    } else if (!digest_ok (authorization)) {
      r.status = 403;
    } else {
      r.status = 200;
      if (!r.removal) {
        gsize semi = contact.find (';');
        extra = "Contact: " + contact.substr (0, semi) + ";expires=" + std::to_string (expires) + "\r\n";
      }
    }
    const char *phrase = r.status == 200 ? "OK" : r.status == 401 ? "Unauthorized" : "Forbidden";
    std::string response = "SIP/2.0 " + std::to_string (r.status) + " " + phrase + "\r\nVia: " +
        header (r.text, "Via") + "\r\nFrom: " + header (r.text, "From") + "\r\nTo: " + header (r.text, "To") +
        ";tag=reg1\r\nCall-ID: " + header (r.text, "Call-ID") + "\r\nCSeq: " + header (r.text, "CSeq") + "\r\n" +
        extra + "Content-Length: 0\r\n\r\n";
    g_socket_send_to (socket, from, response.data (), response.size (), nullptr, nullptr);
    g_object_unref (from);
    requests.push_back (r);
    return true;
  }

  /* Serves until a request answered `status` (removal or not) has come;
   * its index. */
  gsize serve_until (int status, bool removal, guint timeout_ms)
  {
    gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
    for (;;) {
      gint64 left = deadline - g_get_monotonic_time ();
      fail_unless (left > 0, "no REGISTER answered %d%s within %u ms (%zu came)", status, removal ? " (removal)" :
          "", timeout_ms, requests.size ());
      if (serve ((guint) (left / 1000 + 1)) && requests.back ().status == status &&
          requests.back ().removal == removal)
        return requests.size () - 1;
    }
  }
};

/* A response to `request` (its Via, From, Call-ID and CSeq; To with `tag`). */
std::string response_to (const std::string &request, int status, const char *phrase, const std::string &tag)
{
  return "SIP/2.0 " + std::to_string (status) + " " + phrase + "\r\nVia: " + header (request, "Via") + "\r\nFrom: " +
      header (request, "From") + "\r\nTo: " + header (request, "To") + ";tag=" + tag + "\r\nCall-ID: " +
      header (request, "Call-ID") + "\r\nCSeq: " + header (request, "CSeq") + "\r\nContent-Length: 0\r\n\r\n";
}

/* The next SIP message on a raw UDP peer, and who sent it. */
std::string receive_from (GSocket *s, GSocketAddress **from, guint timeout_ms)
{
  if (!g_socket_condition_timed_wait (s, G_IO_IN, (gint64) timeout_ms * 1000, nullptr, nullptr))
    return "";
  char buf[8192];
  g_clear_object (from);
  gssize n = g_socket_receive_from (s, from, buf, sizeof buf, nullptr, nullptr);
  return n > 0 ? std::string (buf, (gsize) n) : "";
}

}  // namespace

GST_START_TEST (test_register)
{
  std::string dir = test_dir ("register");
  /* A password of this run only, so that finding it means it leaked. */
  std::string password = "pw-" + std::to_string (g_random_int ()) + "-" + std::to_string (g_random_int ());
  Registrar registrar ("agent7", password);
  emu::Server server (config ());
  fail_unless (server.start () != 0);
  Phone phone;
  phone.start (YRT_PHONE, dir, server.url (), {"--register", registrar.uri ()},
      {{"YRT_SIP_USER", "agent7"}, {"YRT_SIP_PASSWORD", password}, {"SOFIA_DEBUG", "9"}});
  std::string aor = "<sip:agent7@127.0.0.1:" + std::to_string (registrar.port) + ">";

  /* Challenged, then registered with the right digest. */
  gsize ok = registrar.serve_until (200, false, 10000);
  fail_unless (ok >= 1 && registrar.requests[0].status == 401, "the first REGISTER was answered %d",
      registrar.requests[0].status);
  const std::string &first = registrar.requests[0].text, &good = registrar.requests[ok].text;
  fail_unless (g_str_has_prefix (first.c_str (), ("REGISTER " + registrar.uri () + " SIP/2.0").c_str ()) &&
      header (first, "Authorization").empty (), "%s", first.c_str ());
  fail_unless (header (good, "To").find (aor) == 0 && header (good, "From").find (aor) == 0, "%s", good.c_str ());
  std::string contact = header (good, "Contact");
  fail_unless (contact.find ("sip:agent7@127.0.0.1:" + std::to_string (phone.port)) != std::string::npos,
      "the binding: %s", contact.c_str ());
  auto p = digest_params (header (good, "Authorization"));
  g_print ("phone: REGISTER answered 401, then 200 for a digest (username %s, realm %s, uri %s, qop %s, nc %s)\n",
      p["username"].c_str (), p["realm"].c_str (), p["uri"].c_str (), p["qop"].c_str (), p["nc"].c_str ());
  fail_unless (phone.wait_for ("registered with " + registrar.uri () + " as agent7 (expires 10 s)", 2000), "%s",
      phone.text ().c_str ());

  /* Refreshed before the granted 10 s ran out (sofia-sip picks a time
   * between a quarter and three quarters of it), with a right digest
   * again. */
  gsize refresh = registrar.serve_until (200, false, 11000);
  double after_ms = (registrar.requests[refresh].at_us - registrar.requests[ok].at_us) / 1e3;
  g_print ("phone: the registration was refreshed %.0f ms after it was granted for 10 s\n", after_ms);
  fail_unless (after_ms < 10000, "refreshed %.0f ms after a 10 s registration", after_ms);
  fail_unless (!header (registrar.requests[refresh].text, "Authorization").empty ());
  fail_unless (phone.wait_for ("registration refreshed with " + registrar.uri (), 2000), "%s", phone.text ().c_str ());

  /* SIGTERM: the binding is removed (authenticated) before the phone exits. */
  g_subprocess_send_signal (phone.proc, SIGTERM);
  registrar.serve_until (200, true, 5000);
  fail_unless (phone.wait_exit (5000) == 0, "the phone did not exit cleanly:\n%s", phone.text ().c_str ());
  fail_unless (phone.text ().find ("unregistered from " + registrar.uri () + " (200 OK)") != std::string::npos,
      "%s", phone.text ().c_str ());
  for (auto &r : registrar.requests)
    fail_unless (r.status != 403 && r.text.find (password) == std::string::npos, "a REGISTER answered %d, or "
        "carrying the password: %s", r.status, r.text.c_str ());
  std::string log = phone.text ();
  fail_unless (log.find (password) == std::string::npos, "the password is in the phone's output");
  /* Nor HA1, which sofia-sip's digest client logs at SOFIA_DEBUG 9 unless
   * the phone keeps that log off: with it anyone can answer a challenge. */
  std::string ha1 = md5 ("agent7:" + registrar.realm + ":" + password);
  fail_unless (log.find (ha1) == std::string::npos, "HA1, as good as the password, is in the phone's output");
  fail_unless (log.find ("agent7") != std::string::npos && log.find ("REGISTER") != std::string::npos,
      "the phone's output lacks sofia-sip's own log (SOFIA_DEBUG=9), which the check above is about");
  g_print ("phone: %zu REGISTERs; the password in none of them, nor in %zu bytes of the phone's output\n",
      registrar.requests.size (), log.size ());
}
GST_END_TEST;

/* A call over SIP TCP (raw SIP on one TCP connection: INVITE, ACK, INFO,
 * BYE, and every answer on it), with DTMF as SIP INFO
 * (application/dtmf-relay), as some PBXs send it instead of RFC 4733: the
 * digits reach the model as one message, in order. */
GST_START_TEST (test_tcp_call_with_info_dtmf)
{
  std::string dir = test_dir ("tcp-info");
  emu::Server server (config ());
  fail_unless (server.start () != 0);
  Phone phone;
  phone.start (YRT_PHONE, dir, server.url ());
  guint rtp_port = 0;
  GSocket *rtp = rtp_socket (&rtp_port);
  RawSip sip;
  sip.open (phone.port, true);
  Dialog d = new_dialog ("tcp");
  sip.send (sip_request (sip, "INVITE", d, "", offer ("0", "", rtp_port), 1));
  std::string ok = sip.until_status (200, 15000);
  fail_unless (sip_status (ok) == 200 && ok.find ("m=audio ") != std::string::npos, "the INVITE over TCP: %s",
      ok.c_str ());
  std::string tag = to_tag (ok);
  d.branch += "-ack";
  sip.send (sip_request (sip, "ACK", d, tag, "", 1));
  /* The caller's RTP, 300 ms of silence: the phone's flows then. */
  GInetAddress *lo = g_inet_address_new_from_string ("127.0.0.1");
  std::string answer_sdp = ok.substr (ok.find ("m=audio ") + 8);
  GSocketAddress *phone_rtp = g_inet_socket_address_new (lo, (guint16) atoi (answer_sdp.c_str ()));
  for (guint i = 0; i < 15; i++) {
    guint8 packet[12 + 160] = {0x80, 0, 0, (guint8) i, 0, 0, (guint8) ((i * 160) >> 8), (guint8) (i * 160), 1, 2, 3, 4};
    memset (packet + 12, 0xff, 160);
    g_socket_send_to (rtp, phone_rtp, (const gchar *) packet, sizeof packet, nullptr, nullptr);
    g_usleep (20 * 1000);
  }
  fail_unless (rtp_arrives (rtp, 0, 5000), "no RTP from the phone");

  guint cseq = 2;
  for (const char *key : {"7", "#"}) {
    d.branch = std::string ("z9hG4bK-info") + (key[0] == '#' ? "hash" : key);
    sip.send (sip_request (sip, "INFO", d, tag, std::string ("Signal=") + key + "\r\nDuration=160\r\n", cseq++,
        "application/dtmf-relay"));
    std::string r = sip.until_status (200, 5000);
    fail_unless (sip_status (r) == 200, "INFO: %s", r.c_str ());
  }
  fail_unless (phone.wait_for ("call 1: told the agent: The caller pressed 7, #.", 5000), "%s", phone.text ().c_str ());
  fail_unless (server.wait_for_client_event ("conversation.item.create", 1, 5000));
  std::string told;
  for (auto &e : server.client_events ())
    if (e.type == "conversation.item.create")
      told += e.json;
  fail_unless (told.find ("The caller pressed 7, #.") != std::string::npos, "the model was told: %s", told.c_str ());

  d.branch = "z9hG4bK-tcp-bye";
  sip.send (sip_request (sip, "BYE", d, tag, "", cseq));
  std::string bye = sip.until_status (200, 5000);
  fail_unless (sip_status (bye) == 200, "BYE over TCP: %s", bye.c_str ());
  fail_unless (phone.wait_for ("call 1: ended (0 open)", 2000), "%s", phone.text ().c_str ());
  g_object_unref (phone_rtp);
  g_object_unref (lo);
  g_object_unref (rtp);
  fail_unless (phone.stop () == 0, "the phone did not stop cleanly:\n%s", phone.text ().c_str ());
}
GST_END_TEST;

/* --call to a peer that rings and never answers: CANCEL at the ring
 * timeout (2 s), "no answer", exit status 1. */
GST_START_TEST (test_ring_timeout)
{
  std::string dir = test_dir ("ring-timeout");
  guint port = 0;
  GSocket *peer = rtp_socket (&port);  /* a raw SIP peer on UDP */
  emu::Server server (config ());
  fail_unless (server.start () != 0);
  Phone phone;
  phone.start (YRT_PHONE, dir, server.url (), {"--call", "sip:nobody@127.0.0.1:" + std::to_string (port),
      "--ring-timeout", "2"});
  GSocketAddress *from = nullptr;
  std::string invite = receive_from (peer, &from, 10000);
  gint64 invited = g_get_monotonic_time ();
  fail_unless (g_str_has_prefix (invite.c_str (), "INVITE sip:nobody@127.0.0.1:"), "%s", invite.c_str ());
  std::string ringing = response_to (invite, 180, "Ringing", "ring1");
  g_socket_send_to (peer, from, ringing.data (), ringing.size (), nullptr, nullptr);

  std::string cancel;
  while (!g_str_has_prefix (cancel.c_str (), "CANCEL ")) {  /* past any INVITE sent again before the 180 came */
    cancel = receive_from (peer, &from, 5000);
    fail_unless (!cancel.empty (), "no CANCEL within 5 s of the last message:\n%s", phone.text ().c_str ());
  }
  double after_s = (g_get_monotonic_time () - invited) / 1e6;
  g_print ("phone: CANCEL %.2f s after the INVITE (--ring-timeout 2)\n", after_s);
  fail_unless (after_s > 1.9 && after_s < 3, "CANCEL %.2f s after the INVITE, not at the 2 s ring timeout", after_s);
  fail_unless (header (cancel, "Call-ID") == header (invite, "Call-ID"), "%s", cancel.c_str ());
  std::string cancelled = response_to (cancel, 200, "OK", "ring1"), terminated =
      response_to (invite, 487, "Request Terminated", "ring1");
  g_socket_send_to (peer, from, cancelled.data (), cancelled.size (), nullptr, nullptr);
  g_socket_send_to (peer, from, terminated.data (), terminated.size (), nullptr, nullptr);

  fail_unless (phone.wait_exit (5000) == 1, "the phone did not exit with 1 when nobody answered:\n%s",
      phone.text ().c_str ());
  std::string log = phone.text ();
  fail_in_order (log, {"call 1: calling sip:nobody@", "call 1: ringing", "call 1: no answer within 2 s",
      "call 1: hanging up (no answer)", "call 1: ended (0 open)"});
  fail_unless (server.sessions_opened () == 0, "a session for a call nobody answered");
  g_object_unref (from);
  g_object_unref (peer);
}
GST_END_TEST;

static Suite *phone_sip_suite ()
{
  Suite *s = suite_create ("phone-sip");
  TCase *tc = tcase_create ("sip");
  tcase_set_timeout (tc, 60);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_register);
  tcase_add_test (tc, test_tcp_call_with_info_dtmf);
  tcase_add_test (tc, test_ring_timeout);
  return s;
}

int main (int argc, char **argv)
{
  return run_phone_suite (&argc, &argv, phone_sip_suite, "phone-sip", __FILE__);
}
