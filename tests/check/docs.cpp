/* docs/yandexrealtime.md against the element itself: every property (with
 * its type's default, range and the states it can change in), every stats
 * field, every action signal (with its arity) and every pad (direction,
 * presence, caps) is documented, and nothing
 * documented is missing from the element.  Bus messages are checked as they
 * are posted, by every Fixture of the element suites (harness.h). */
#include "docs-table.h"

/* After the C++ headers: check.h's macros break <ios>. */
#include <gst/check/gstcheck.h>

namespace {

using yrt::test::DocRow;
using Rows = std::map<std::string, DocRow>;

Rows table_after (const std::string &header)
{
  Rows rows = yrt::test::docs_table (yrt::test::docs_text (), header);
  fail_if (rows.empty (), "no table headed \"%s\" in %s", header.c_str (), YRT_DOCS_FILE);
  return rows;
}

/* The leading number of a cell ("4294967295; 0 = forever" → 4294967295). */
double number (const std::string &cell)
{
  return g_ascii_strtod (cell.c_str (), nullptr);
}

std::string states_of (GParamSpec *spec)
{
  if (!(spec->flags & G_PARAM_WRITABLE))
    return "never";
  if (spec->flags & GST_PARAM_MUTABLE_PLAYING)
    return "any state";
  if (spec->flags & GST_PARAM_MUTABLE_READY)
    return "NULL, READY";
  return "NULL";
}

void check_default_and_range (GParamSpec *spec, const DocRow &row)
{
  const char *name = spec->name;
  const std::string &def = row[2], &range = row[3];
  if (G_IS_PARAM_SPEC_UINT (spec)) {
    GParamSpecUInt *u = G_PARAM_SPEC_UINT (spec);
    size_t dash = range.find ("–");
    fail_unless (dash != std::string::npos, "%s: range \"%s\"", name, range.c_str ());
    fail_unless (number (def) == u->default_value && number (range) == u->minimum &&
            number (range.substr (dash + 3)) == u->maximum,
        "%s: documented %s, %s; the element has %u, %u – %u", name, def.c_str (),
        range.c_str (), u->default_value, u->minimum, u->maximum);
  } else if (G_IS_PARAM_SPEC_DOUBLE (spec)) {
    GParamSpecDouble *d = G_PARAM_SPEC_DOUBLE (spec);
    fail_unless (number (def) == d->default_value, "%s: documented default %s, the element has %g",
        name, def.c_str (), d->default_value);
  } else if (G_IS_PARAM_SPEC_BOOLEAN (spec)) {
    const char *expected = G_PARAM_SPEC_BOOLEAN (spec)->default_value ? "true" : "false";
    fail_unless (def == expected, "%s: documented default %s, the element has %s", name,
        def.c_str (), expected);
  } else if (G_IS_PARAM_SPEC_ENUM (spec)) {
    GParamSpecEnum *e = G_PARAM_SPEC_ENUM (spec);
    GEnumValue *v = g_enum_get_value (e->enum_class, e->default_value);
    std::string expected = std::string ("`") + v->value_nick + "` (" +
        std::to_string (v->value) + ")";
    fail_unless (def == expected, "%s: documented default %s, the element has %s", name,
        def.c_str (), expected.c_str ());
  }
}

GType element_type ()
{
  GstElement *element = gst_element_factory_make ("yandexrealtime", nullptr);
  fail_unless (element != nullptr, "the plugin did not load");
  GType type = G_OBJECT_TYPE (element);
  gst_object_unref (element);
  return type;
}

}  // namespace

GST_START_TEST (test_properties_are_documented)
{
  Rows rows = table_after ("| property | type | default |");
  GType type = element_type ();
  GObjectClass *klass = G_OBJECT_CLASS (g_type_class_ref (type));
  guint n = 0;
  GParamSpec **specs = g_object_class_list_properties (klass, &n);
  guint own = 0;
  for (guint i = 0; i < n; i++) {
    GParamSpec *spec = specs[i];
    if (spec->owner_type != type)
      continue;  /* name, parent: GstObject's */
    own++;
    auto it = rows.find (spec->name);
    fail_unless (it != rows.end (), "property %s is not in the docs' table", spec->name);
    fail_unless (it->second.size () >= 6, "%s: row too short", spec->name);
    std::string states = states_of (spec);
    fail_unless (it->second[4] == states, "%s: documented changeable in \"%s\", the element: \"%s\"",
        spec->name, it->second[4].c_str (), states.c_str ());
    check_default_and_range (spec, it->second);
  }
  fail_unless_equals_int (rows.size (), own);  /* nothing documented that is not there */
  g_free (specs);
  g_type_class_unref (klass);
}
GST_END_TEST;

GST_START_TEST (test_stats_fields_are_documented)
{
  Rows rows = table_after ("| field | type | counts |");
  GstElement *element = gst_element_factory_make ("yandexrealtime", nullptr);
  GstStructure *stats = nullptr;
  g_object_get (element, "stats", &stats, nullptr);
  fail_unless (stats != nullptr);
  gint fields = gst_structure_n_fields (stats);
  for (gint i = 0; i < fields; i++) {
    const char *field = gst_structure_nth_field_name (stats, i);
    fail_unless (rows.count (field) == 1, "stats field %s is not in the docs' table", field);
  }
  fail_unless_equals_int (rows.size (), fields);
  gst_structure_free (stats);
  gst_object_unref (element);
}
GST_END_TEST;

GST_START_TEST (test_action_signals_are_documented)
{
  Rows rows = table_after ("| signal | signature | what it does |");
  GType type = element_type ();
  guint n = 0;
  guint *ids = g_signal_list_ids (type, &n);
  guint actions = 0;
  for (guint i = 0; i < n; i++) {
    GSignalQuery q;
    g_signal_query (ids[i], &q);
    if (!(q.signal_flags & G_SIGNAL_ACTION))
      continue;
    actions++;
    auto it = rows.find (q.signal_name);
    fail_unless (it != rows.end (), "signal %s is not in the docs' table", q.signal_name);
    fail_unless (it->second.size () >= 3, "%s: row too short", q.signal_name);
    const std::string &signature = it->second[1];
    /* `gboolean (GstElement *rt, a, b)`: one comma per parameter. */
    guint commas = 0;
    for (char c : signature)
      commas += c == ',';
    fail_unless (commas == q.n_params, "%s: documented as %s, the element takes %u parameters",
        q.signal_name, signature.c_str (), q.n_params);
    fail_unless (g_str_has_prefix (signature.c_str (),
            (std::string ("`") + g_type_name (q.return_type) + " (").c_str ()),
        "%s: documented as %s", q.signal_name, signature.c_str ());
  }
  fail_unless_equals_int (rows.size (), actions);
  g_free (ids);
}
GST_END_TEST;

/* Every pad template is in the pads table with its direction, presence and
 * media type (and its whole caps where the table gives them literally), and
 * the table has no other pad. */
GST_START_TEST (test_pads_are_documented)
{
  Rows rows = table_after ("| pad | direction | presence | caps |");
  GstElementFactory *factory = gst_element_factory_find ("yandexrealtime");
  fail_unless (factory != nullptr, "the plugin did not load");
  const GList *templates = gst_element_factory_get_static_pad_templates (factory);
  static const char *const presence[] = {"always", "sometimes", "request"};
  for (const GList *l = templates; l; l = l->next) {
    auto *t = static_cast<GstStaticPadTemplate *> (l->data);
    auto it = rows.find (t->name_template);
    fail_unless (it != rows.end (), "pad %s is not in the docs' table", t->name_template);
    const DocRow &row = it->second;
    fail_unless_equals_string (row[1].c_str (), t->direction == GST_PAD_SRC ? "src" : "sink");
    fail_unless_equals_string (row[2].c_str (), presence[t->presence]);
    std::string documented = yrt::test::quoted (row[3]).at (0);
    GstCaps *caps = gst_static_caps_get (&t->static_caps);
    const char *media = gst_structure_get_name (gst_caps_get_structure (caps, 0));
    fail_unless (g_str_has_prefix (documented.c_str (), (std::string (media) + ",").c_str ()),
        "%s: documented %s, the element has %s", t->name_template, documented.c_str (), media);
    /* Compared whole where the cell gives the caps literally: not when it
     * gives the caps in use (naming the template apart) or words for a
     * list ("every GStreamer audio format"). */
    bool literal_caps = row[3].find ("template") == std::string::npos &&
        documented.find ("every") == std::string::npos;
    GstCaps *literal = literal_caps ? gst_caps_from_string (documented.c_str ()) : nullptr;
    if (literal) {
      gchar *actual = gst_caps_to_string (caps);
      fail_unless (gst_caps_is_equal (literal, caps), "%s: documented %s, the element has %s",
          t->name_template, documented.c_str (), actual);
      g_free (actual);
      gst_caps_unref (literal);
    }
    gst_caps_unref (caps);
  }
  fail_unless_equals_int (rows.size (), g_list_length ((GList *) templates));
  gst_object_unref (factory);
}
GST_END_TEST;

static Suite *docs_suite ()
{
  Suite *s = suite_create ("docs");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_properties_are_documented);
  tcase_add_test (tc, test_stats_fields_are_documented);
  tcase_add_test (tc, test_action_signals_are_documented);
  tcase_add_test (tc, test_pads_are_documented);
  return s;
}

GST_CHECK_MAIN (docs);
