/* Tables of docs/yandexrealtime.md, for tests that hold the element to its
 * reference page (docs.cpp, and every message a Fixture sees). */
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <glib.h>

namespace yrt {
namespace test {

using DocRow = std::vector<std::string>;  /* the cells of one row, trimmed */

inline std::string docs_text ()
{
  std::ifstream in (YRT_DOCS_FILE);
  std::stringstream all;
  all << in.rdbuf ();
  return all.str ();
}

inline std::string trimmed (const std::string &s)
{
  size_t a = s.find_first_not_of (' ');
  size_t b = s.find_last_not_of (' ');
  return a == std::string::npos ? "" : s.substr (a, b - a + 1);
}

/* Rows whose first cell is a `name`, in the table whose header row starts
 * with `header`, keyed by that name; empty when there is no such table. */
inline std::map<std::string, DocRow> docs_table (const std::string &doc, const std::string &header)
{
  std::map<std::string, DocRow> rows;
  size_t at = doc.find ("\n" + header);
  if (at == std::string::npos)
    return rows;
  std::stringstream in (doc.substr (at + 1));
  std::string line;
  std::getline (in, line);  /* header */
  std::getline (in, line);  /* |---| */
  while (std::getline (in, line) && g_str_has_prefix (line.c_str (), "| `")) {
    DocRow row;
    std::stringstream cells (line.substr (1));
    std::string cell;
    while (std::getline (cells, cell, '|'))
      row.push_back (trimmed (cell));
    rows[row[0].substr (1, row[0].find ('`', 1) - 1)] = row;
  }
  return rows;
}

/* Every `quoted` word of a cell. */
inline std::vector<std::string> quoted (const std::string &cell)
{
  std::vector<std::string> words;
  for (size_t a = cell.find ('`'); a != std::string::npos; a = cell.find ('`', a)) {
    size_t b = cell.find ('`', a + 1);
    if (b == std::string::npos)
      break;
    words.push_back (cell.substr (a + 1, b - a - 1));
    a = b + 1;
  }
  return words;
}

}  // namespace test
}  // namespace yrt
