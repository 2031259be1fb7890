/* examples/phone/register.c: --register sip:REGISTRAR: the phone REGISTERs
 * its address (sip:USER@REGISTRAR, contact: its --listen address) so that a
 * PBX or a trunk can find it, answers the registrar's digest challenge with
 * YRT_SIP_USER and YRT_SIP_PASSWORD from the environment, lets sofia-sip
 * refresh the registration before it expires (answering new challenges),
 * and removes it when the phone stops.
 *
 * The password goes only into nua_authenticate (sofia-sip's digest client
 * computes the response from it): never on the command line, never printed.
 * The environment variable is cleared once read, so a child process (none
 * today) would not inherit it.  sofia-sip's digest client logs HA1 =
 * MD5(user:realm:password) at SOFIA_DEBUG 9, which is as good as the
 * password to anyone who reads it: its log (iptsec's, exported but in no
 * header) stays off whatever SOFIA_DEBUG says. */
#include "register.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_tag.h>

#include <stdio.h>
#include <string.h>

extern su_log_t iptsec_log[];

static struct {
  nua_handle_t *nh;
  gchar *registrar;          /* --register */
  gchar *user;
  gchar *password;           /* NULL: the registrar does not challenge */
  gchar *answered_nonce;     /* the challenge we answered last: a second one for it is a refusal */
  gboolean registered;
  gboolean unregistering;
  void (*done) (void);       /* unregistered (or given up): the phone may stop */
} reg;

gboolean
phone_register_init (const gchar *registrar, gchar **why)
{
  const gchar *user = g_getenv ("YRT_SIP_USER");
  if (!g_str_has_prefix (registrar, "sip:") || !user || !*user) {
    *why = g_strdup ("--register wants sip:ADDRESS[:PORT] and YRT_SIP_USER (and YRT_SIP_PASSWORD) in the "
        "environment");
    return FALSE;
  }
  reg.registrar = g_strdup (registrar);
  reg.user = g_strdup (user);
  reg.password = g_strdup (g_getenv ("YRT_SIP_PASSWORD"));
  g_unsetenv ("YRT_SIP_PASSWORD");
  return TRUE;
}

void
phone_register_start (nua_t *nua)
{
  if (!reg.registrar)
    return;
  su_log_set_level (iptsec_log, 0);  /* after main set SOFIA_DEBUG's level: see the top */
  /* The address of record: USER at the registrar's host. */
  gchar *aor = g_strdup_printf ("<sip:%s@%s>", reg.user, reg.registrar + 4);
  reg.nh = nua_handle (nua, NULL, SIPTAG_TO_STR (aor), SIPTAG_FROM_STR (aor), TAG_END ());
  g_free (aor);
  g_print ("registering with %s as %s\n", reg.registrar, reg.user);
  /* No OPTIONS of sofia-sip's own ("outbound"): a probe of the binding
   * through the registrar as a proxy, and keepalives; a registrar that is
   * no proxy (or a PBX that polls with its own OPTIONS) has no use for
   * them. */
  nua_register (reg.nh, NUTAG_REGISTRAR (URL_STRING_MAKE (reg.registrar)), NUTAG_M_USERNAME (reg.user),
      NUTAG_OUTBOUND ("no-validate no-options-keepalive"), TAG_END ());
}

gboolean
phone_register_is (nua_handle_t *nh)
{
  return nh && nh == reg.nh;
}

/* The challenge's realm and nonce (a WWW- or Proxy-Authenticate). */
static const msg_auth_t *
challenge_of (sip_t const *sip)
{
  if (!sip)
    return NULL;
  return sip->sip_www_authenticate ? sip->sip_www_authenticate : sip->sip_proxy_authenticate;
}

static gchar *
challenge_param (const msg_auth_t *au, const char *name)
{
  const char *v = au ? msg_params_find (au->au_params, name) : NULL;
  if (!v)
    return NULL;
  gsize len = strlen (v);
  return len >= 2 && v[0] == '"' && v[len - 1] == '"' ? g_strndup (v + 1, len - 2) : g_strdup (v);
}

/* 401/407: answer with the credentials, once per challenge (the same
 * nonce again means they were refused). */
static gboolean
authenticate (sip_t const *sip)
{
  const msg_auth_t *au = challenge_of (sip);
  gchar *realm = challenge_param (au, "realm="), *nonce = challenge_param (au, "nonce=");
  gboolean ok = reg.password && realm && nonce && g_strcmp0 (nonce, reg.answered_nonce) != 0;
  if (ok) {
    g_free (reg.answered_nonce);
    reg.answered_nonce = g_strdup (nonce);
    gchar *credentials = g_strdup_printf ("%s:\"%s\":%s:%s", au->au_scheme, realm, reg.user, reg.password);
    nua_authenticate (reg.nh, NUTAG_AUTH (credentials), TAG_END ());
    memset (credentials, 0, strlen (credentials));  /* holds the password */
    g_free (credentials);
  }
  g_free (realm);
  g_free (nonce);
  return ok;
}

/* The granted expiry: our Contact's expires in the 200, or Expires. */
static guint
granted_expiry (sip_t const *sip)
{
  for (const sip_contact_t *m = sip ? sip->sip_contact : NULL; m; m = m->m_next)
    if (m->m_expires)
      return (guint) strtoul (m->m_expires, NULL, 10);
  return sip && sip->sip_expires ? (guint) sip->sip_expires->ex_delta : 0;
}

void
phone_register_response (nua_event_t event, int status, char const *phrase, sip_t const *sip)
{
  if (status < 200)
    return;
  if ((status == 401 || status == 407) && authenticate (sip))
    return;
  if (event == nua_r_unregister) {
    g_print ("unregistered from %s (%d %s)\n", reg.registrar, status, phrase);
    reg.registered = FALSE;
    reg.unregistering = FALSE;
    if (reg.done)
      reg.done ();
    return;
  }
  if (status >= 300) {
    g_print ("registration with %s failed (%d %s)\n", reg.registrar, status, phrase);
    reg.registered = FALSE;
    return;
  }
  g_print ("%s with %s as %s (expires %u s)\n", reg.registered ? "registration refreshed" : "registered",
      reg.registrar, reg.user, granted_expiry (sip));
  reg.registered = TRUE;
}

gboolean
phone_register_stop (void (*done) (void))
{
  if (!reg.nh || !reg.registered || reg.unregistering)
    return FALSE;
  reg.unregistering = TRUE;
  reg.done = done;
  g_free (reg.answered_nonce);  /* a new challenge for the un-REGISTER gets an answer */
  reg.answered_nonce = NULL;
  nua_unregister (reg.nh, TAG_END ());
  return TRUE;
}

void
phone_register_free (void)
{
  if (reg.nh)
    nua_handle_destroy (reg.nh);
  if (reg.password)
    memset (reg.password, 0, strlen (reg.password));
  g_free (reg.password);
  g_free (reg.user);
  g_free (reg.registrar);
  g_free (reg.answered_nonce);
  memset (&reg, 0, sizeof reg);
}
