// libFuzzer target for `postern import docker-mailserver` (src/import/): every DMS file
// parser on the input, then the whole plan with the input cut into files at NUL bytes
// (mailserver.env, postfix-main.cf, postfix-master.cf, postfix-accounts.cf,
// postfix-virtual.cf, postfix-aliases.cf, postfix-regexp.cf, dovecot.cf,
// dovecot-quotas.cf, postfix-relaymap.cf, postfix-sasl-password.cf, opendkim/KeyTable).
// Nothing may crash; every entry carries a line inside the input; every report line starts
// with a known kind; the SASL passwords never reach the report. Seeds: fuzz/corpus/import_dms/.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "import/dms_files.h"
#include "import/dms_import.h"

namespace {

using namespace postern::import;

size_t countLines(std::string_view s) {
  size_t n = 1;
  for (char c : s) n += c == '\n';
  return n;
}

template <class Entries>
void checkLines(const Entries& entries, size_t max_line) {
  for (const auto& e : entries)
    if (e.line == 0 || e.line > max_line) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t lines = countLines(input);

  checkLines(parseEnvFile(input).vars, lines);
  MainCf main_cf = parseMainCf(input);
  checkLines(main_cf.settings, lines);
  for (const auto& s : main_cf.settings)
    if (s.end_line < s.line || s.end_line > lines) __builtin_trap();
  checkLines(parseMasterOverrides(input).overrides, lines);
  RelayMap relay = parseRelayMap(input);
  checkLines(relay.routes, lines);
  for (const auto& r : relay.routes)
    if (r.domain.empty() || r.port == 0 || r.port > 65535) __builtin_trap();
  checkLines(parseSaslPasswords(input).entries, lines);
  checkLines(parseLocalAliases(input).aliases, lines);
  RegexpAliases regexp = parseRegexpAliases(input);
  checkLines(regexp.rules, lines);
  for (const auto& r : regexp.rules) {
    std::string addr = literalAddressOf(r);
    if (!addr.empty() && addr.find('@') == std::string::npos) __builtin_trap();
  }
  checkLines(parseQuotas(input).quotas, lines);
  checkLines(parseDovecotCf(input).settings, lines);
  checkLines(parseKeyTable(input).keys, lines);
  checkLines(parseSigningTable(input).entries, lines);
  std::string domain, selector;
  if (parseRspamdKeyName(input, domain, selector) && (domain.empty() || selector.empty())) __builtin_trap();

  static const char* kNames[] = {"",
                                 "postfix-main.cf",
                                 "postfix-master.cf",
                                 "postfix-accounts.cf",
                                 "postfix-virtual.cf",
                                 "postfix-aliases.cf",
                                 "postfix-regexp.cf",
                                 "dovecot.cf",
                                 "dovecot-quotas.cf",
                                 "postfix-relaymap.cf",
                                 "postfix-sasl-password.cf",
                                 "opendkim/KeyTable"};
  ImportInput in;
  size_t i = 0;
  std::string_view rest = input;
  while (i < std::size(kNames)) {
    size_t nul = rest.find('\0');
    std::string_view part = rest.substr(0, nul);
    if (i == 0) {
      in.has_env = true;
      in.env_label = "mailserver.env";
      in.env_text = std::string(part);
    } else {
      in.files[kNames[i]] = std::string(part);
    }
    ++i;
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }
  Features f;
  f.routes = size % 2 == 1;  // both ways of the route code
  Plan plan = planImport(in, f);
  std::vector<std::string> secrets;
  // A password may show up legitimately when the same text is in another file too; short
  // ones can occur anywhere by chance.
  if (auto it = in.files.find("postfix-sasl-password.cf"); it != in.files.end()) {
    for (const auto& e : parseSaslPasswords(it->second).entries) {
      bool elsewhere = in.env_text.find(e.password) != std::string::npos;
      for (const auto& [name, text] : in.files)
        elsewhere = elsewhere || (name != it->first && text.find(e.password) != std::string::npos);
      if (e.password.size() >= 12 && !elsewhere) secrets.push_back(e.password);
    }
  }
  for (const auto& line : plan.report) {
    std::string_view l = line;
    if (l.rfind("mapped  ", 0) != 0 && l.rfind("not carried over  ", 0) != 0 && l.rfind("warning  ", 0) != 0 &&
        l.rfind("note  ", 0) != 0)
      __builtin_trap();
    for (const auto& s : secrets)
      if (l.find(s) != std::string_view::npos) __builtin_trap();
  }
  if (plan.toml.empty()) __builtin_trap();
  return 0;
}
