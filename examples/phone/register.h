/* examples/phone/register.h: --register, the phone's registration with a
 * registrar or PBX, digest authentication from the environment
 * (register.c). */
#pragma once

#include <glib.h>
#include <sofia-sip/nua.h>

G_BEGIN_DECLS

/* --register URI: reads YRT_SIP_USER and YRT_SIP_PASSWORD (and clears the
 * latter from the environment).  FALSE with *why when they do not do. */
gboolean phone_register_init (const gchar *registrar, gchar **why);
/* Sends the first REGISTER (nothing without --register). */
void phone_register_start (nua_t *nua);
/* Whether `nh` is the registration's handle. */
gboolean phone_register_is (nua_handle_t *nh);
/* nua_r_register / nua_r_unregister. */
void phone_register_response (nua_event_t event, int status, char const *phrase, sip_t const *sip);
/* Stopping: un-REGISTERs, then calls `done`; FALSE (and no call) when
 * there is nothing to remove. */
gboolean phone_register_stop (void (*done) (void));
void phone_register_free (void);

G_END_DECLS
