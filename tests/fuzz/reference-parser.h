#pragma once

#include <glib.h>

#include <string>

/* parse_server_event without the fast path; the event as describe_event(). */
bool reference_parse (const char *data, gsize size, std::string &description,
    std::string &why);
