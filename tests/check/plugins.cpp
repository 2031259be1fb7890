/* The plugins a test program can load: run in that program's environment
 * (tests/check/meson.build), with its list of plugins as arguments, it checks
 * that the registry holds exactly those, each loadable, and that the scan
 * opened no other plugin file.  Whatever else the machine has installed
 * (OpenNI2 or DirectFB behind gst-plugins-bad, say) stays out of the test
 * process. */
#include <fstream>
#include <set>
#include <string>

/* After the standard headers: its macros break <ios>. */
#include <gst/check/gstcheck.h>

namespace {

std::set<std::string> expected;

/* libgstNAME.so -> NAME: the names tests/check/meson.build lists. */
std::string name_of (const std::string &path)
{
  std::string base = path.substr (path.rfind ('/') + 1);
  if (g_str_has_prefix (base.c_str (), "libgst"))
    base = base.substr (6);
  if (g_str_has_suffix (base.c_str (), ".so"))
    base = base.substr (0, base.size () - 3);
  return base;
}

}  // namespace

GST_START_TEST (test_registry_holds_only_the_listed_plugins)
{
  std::set<std::string> found;
  GList *plugins = gst_registry_get_plugin_list (gst_registry_get ());
  for (GList *l = plugins; l; l = l->next) {
    GstPlugin *plugin = GST_PLUGIN (l->data);
    const gchar *file = gst_plugin_get_filename (plugin);
    if (!file)
      continue;  /* static plugins: none here, and never opened */
    std::string name = name_of (file);
    fail_unless (expected.count (name), "plugin %s (%s) is in the registry, but not in this "
        "program's list in tests/check/meson.build", name.c_str (), file);
    fail_if (GST_OBJECT_FLAG_IS_SET (plugin, GST_PLUGIN_FLAG_BLACKLISTED),
        "plugin %s (%s) failed to load", name.c_str (), file);
    found.insert (name);
  }
  gst_plugin_list_free (plugins);
  for (const std::string &name : expected)
    fail_unless (found.count (name), "plugin %s is listed but not installed (libgst%s.so in %s, "
        "a link made by tests/plugin-dir.sh): install the package that has it",
        name.c_str (), name.c_str (), g_getenv ("GST_PLUGIN_SYSTEM_PATH_1_0"));
}
GST_END_TEST;

/* The scan itself (in-process: GST_REGISTRY_FORK=no) opened no other plugin. */
GST_START_TEST (test_no_other_plugin_is_mapped)
{
  std::ifstream maps ("/proc/self/maps");
  std::string line;
  while (std::getline (maps, line)) {
    std::string::size_type slash = line.find ('/');
    if (slash == std::string::npos)
      continue;
    std::string path = line.substr (slash);
    if (path.find ("/gstreamer-1.0/libgst") == std::string::npos)
      continue;
    fail_unless (expected.count (name_of (path)), "plugin file %s is mapped into the process",
        path.c_str ());
  }
}
GST_END_TEST;

static Suite *plugins_suite ()
{
  Suite *s = suite_create ("plugins");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_registry_holds_only_the_listed_plugins);
  tcase_add_test (tc, test_no_other_plugin_is_mapped);
  return s;
}

int main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  for (int i = 1; i < argc; i++)
    expected.insert (argv[i]);
  return gst_check_run_suite (plugins_suite (), "plugins", __FILE__);
}
