/* examples/phone/sdp.c: SDP offer/answer for yandexrealtime-phone (RFC 3264):
 * reads the caller's offer with sofia-sip's parser, picks the codec, and
 * writes our answer (or our offer, for outbound calls).  One audio stream,
 * RTP/AVP, one codec plus telephone-event. */
#include "phone.h"

#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include <stdlib.h>
#include <string.h>

/* Every codec the line may use, the default preference order first:
 * G.711 is what every PBX and trunk speaks. */
static const PhoneCodec codec_pcmu = {"PCMU", 0, 8000, 8000, NULL, "mulawenc", "mulawdec", "rtppcmupay", "rtppcmudepay"};
static const PhoneCodec codec_pcma = {"PCMA", 8, 8000, 8000, NULL, "alawenc", "alawdec", "rtppcmapay", "rtppcmadepay"};
static const PhoneCodec codec_g722 = {"G722", 9, 8000, 16000, NULL, "avenc_g722", "avdec_g722", "rtpg722pay",
    "rtpg722depay"};
static const PhoneCodec codec_opus = {"opus", 0, 48000, 48000, "2", "opusenc", "opusdec", "rtpopuspay",
    "rtpopusdepay"};

const PhoneCodec *const phone_codecs[] = {&codec_pcmu, &codec_pcma, &codec_g722, &codec_opus, NULL};

#define DTMF_PT 101  /* ours, in an offer */
#define OPUS_PT 111

const PhoneCodec *
phone_codec_find (const gchar *name)
{
  for (guint i = 0; name && phone_codecs[i]; i++)
    if (g_ascii_strcasecmp (phone_codecs[i]->name, name) == 0)
      return phone_codecs[i];
  return NULL;
}

void
phone_media_params_clear (PhoneMediaParams *p)
{
  g_clear_pointer (&p->remote_addr, g_free);
  memset (p, 0, sizeof *p);
}

/* The stream's connection address: its own c= line, else the session's. */
static const gchar *
connection_address (const sdp_session_t *s, const sdp_media_t *m)
{
  const sdp_connection_t *c = m->m_connections ? m->m_connections : s->sdp_connection;
  return c && c->c_addrtype == sdp_addr_ip4 ? c->c_address : NULL;
}

static const gchar *
media_attribute (const sdp_media_t *m, const gchar *name)
{
  for (const sdp_attribute_t *a = m->m_attributes; a; a = a->a_next)
    if (g_ascii_strcasecmp (a->a_name, name) == 0)
      return a->a_value ? a->a_value : "";
  return NULL;
}

static gboolean
rtpmap_is (const sdp_rtpmap_t *rm, const PhoneCodec *c)
{
  if (!rm->rm_encoding || g_ascii_strcasecmp (rm->rm_encoding, c->name) != 0)
    return FALSE;
  return rm->rm_rate == c->clock_rate;
}

/* Fills out->remote_* and on_hold from the first audio stream; the stream or NULL. */
static const sdp_media_t *
read_stream (const sdp_session_t *s, PhoneMediaParams *out, gchar **why)
{
  const sdp_media_t *m = s->sdp_media;
  while (m && !(m->m_type == sdp_media_audio && m->m_port != 0))
    m = m->m_next;
  if (!m) {
    *why = g_strdup ("no audio stream");
    return NULL;
  }
  if (m->m_proto != sdp_proto_rtp) {
    *why = g_strdup_printf ("audio over %s, not RTP/AVP", m->m_proto_name ? m->m_proto_name : "?");
    return NULL;
  }
  const gchar *addr = connection_address (s, m);
  GInetAddress *ip = addr ? g_inet_address_new_from_string (addr) : NULL;
  if (!ip) {  /* a name would need DNS: a PBX gives numbers */
    *why = g_strdup_printf ("the audio's address is not a numeric IPv4 address: %s", addr ? addr : "none");
    return NULL;
  }
  g_object_unref (ip);
  out->remote_addr = g_strdup (addr);
  out->remote_port = (guint) m->m_port;
  out->remote_rtcp_port = out->remote_port + 1;
  const gchar *rtcp = media_attribute (m, "rtcp");  /* RFC 3605: "port [IN IP4 addr]" */
  if (rtcp && atoi (rtcp) > 0)
    out->remote_rtcp_port = (guint) atoi (rtcp);
  /* Hold (RFC 3264 8.4): the far end no longer receives (a=sendonly,
   * a=inactive, or the old c=0.0.0.0). */
  out->on_hold = !(m->m_mode & sdp_recvonly) || g_str_equal (addr, "0.0.0.0");
  out->remote_sends = (m->m_mode & sdp_sendonly) != 0;
  out->ptime_ms = 20;
  return m;
}

static void
read_dtmf (const sdp_media_t *m, PhoneMediaParams *out)
{
  for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next)
    if (rm->rm_encoding && g_ascii_strcasecmp (rm->rm_encoding, "telephone-event") == 0 &&
        rm->rm_rate == out->codec->clock_rate) {
      out->dtmf_pt = rm->rm_pt;
      return;
    }
}

static sdp_session_t *
parse (su_home_t *home, const gchar *sdp, gsize len, sdp_parser_t **parser, gchar **why)
{
  *parser = sdp_parse (home, sdp, (issize_t) len, 0);
  sdp_session_t *s = sdp_session (*parser);
  if (!s)
    *why = g_strdup_printf ("invalid SDP: %s", sdp_parsing_error (*parser));
  return s;
}

gboolean
phone_sdp_read_offer (const gchar *sdp, gsize len, gchar **prefs, PhoneMediaParams *out, gchar **why)
{
  su_home_t *home = su_home_new (sizeof (su_home_t));
  sdp_parser_t *parser = NULL;
  sdp_session_t *s = parse (home, sdp, len, &parser, why);
  const sdp_media_t *m = s ? read_stream (s, out, why) : NULL;
  /* Our preference decides among what the offer has. */
  for (guint i = 0; m && prefs[i] && !out->codec; i++) {
    const PhoneCodec *c = phone_codec_find (prefs[i]);
    for (const sdp_rtpmap_t *rm = m->m_rtpmaps; c && rm; rm = rm->rm_next)
      if (rtpmap_is (rm, c)) {
        out->codec = c;
        out->pt = rm->rm_pt;
        break;
      }
  }
  if (m && !out->codec)
    *why = g_strdup ("none of our codecs offered");
  if (out->codec)
    read_dtmf (m, out);
  sdp_parser_free (parser);
  su_home_unref (home);
  return out->codec != NULL;
}

gboolean
phone_sdp_read_answer (const gchar *sdp, gsize len, PhoneMediaParams *out, gchar **why)
{
  su_home_t *home = su_home_new (sizeof (su_home_t));
  sdp_parser_t *parser = NULL;
  sdp_session_t *s = parse (home, sdp, len, &parser, why);
  const sdp_media_t *m = s ? read_stream (s, out, why) : NULL;
  for (const sdp_rtpmap_t *rm = m ? m->m_rtpmaps : NULL; rm && !out->codec; rm = rm->rm_next)
    for (guint i = 0; phone_codecs[i] && !out->codec; i++)
      if (rtpmap_is (rm, phone_codecs[i])) {
        out->codec = phone_codecs[i];
        out->pt = rm->rm_pt;
      }
  if (m && !out->codec)
    *why = g_strdup ("the answer has none of our codecs");
  if (out->codec)
    read_dtmf (m, out);
  sdp_parser_free (parser);
  su_home_unref (home);
  return out->codec != NULL;
}

static void
add_codec (GString *m_line, GString *attrs, const PhoneCodec *c, guint pt)
{
  g_string_append_printf (m_line, " %u", pt);
  g_string_append_printf (attrs, "a=rtpmap:%u %s/%u%s%s\r\n", pt, c->name, c->clock_rate,
      c->params ? "/" : "", c->params ? c->params : "");
  if (c == &codec_opus)
    g_string_append_printf (attrs, "a=fmtp:%u useinbandfec=0\r\n", pt);
}

gchar *
phone_sdp_write (const PhoneMediaParams *p, gchar **prefs, const gchar *local_addr, guint local_port,
    guint64 session_id, guint version)
{
  GString *m_line = g_string_new (NULL), *attrs = g_string_new (NULL);
  guint clock = 8000;
  if (p->codec) {  /* an answer: the one codec */
    add_codec (m_line, attrs, p->codec, p->pt);
    clock = p->codec->clock_rate;
  } else {  /* an offer: every codec we would take, in our order */
    for (guint i = 0; prefs[i]; i++) {
      const PhoneCodec *c = phone_codec_find (prefs[i]);
      if (c)
        add_codec (m_line, attrs, c, c->static_pt || c == &codec_pcmu ? c->static_pt : OPUS_PT);
    }
  }
  guint dtmf = p->codec ? p->dtmf_pt : DTMF_PT;
  if (dtmf) {
    g_string_append_printf (m_line, " %u", dtmf);
    g_string_append_printf (attrs, "a=rtpmap:%u telephone-event/%u\r\na=fmtp:%u 0-15\r\n", dtmf, clock, dtmf);
  }
  gchar *text = g_strdup_printf ("v=0\r\n"
      "o=yandexrealtime-phone %" G_GUINT64_FORMAT " %u IN IP4 %s\r\n"
      "s=yandexrealtime-phone\r\n"
      "c=IN IP4 %s\r\n"
      "t=0 0\r\n"
      "m=audio %u RTP/AVP%s\r\n"
      "%s"
      "a=ptime:%u\r\n"
      "a=rtcp:%u\r\n"
      "a=%s\r\n",
      session_id, version, local_addr, local_addr, local_port, m_line->str, attrs->str,
      p->ptime_ms ? p->ptime_ms : 20, local_port + 1,
      !p->on_hold ? "sendrecv" : p->remote_sends ? "recvonly" : "inactive");
  g_string_free (m_line, TRUE);
  g_string_free (attrs, TRUE);
  return text;
}
