// Parsers for the files of a docker-mailserver (DMS) config folder, the one DMS mounts at
// /tmp/docker-mailserver. Each parser is pure: the whole text of one file in, a list of
// entries out, each with its 1-based line number so that the importer can name
// `file:line` for every setting it maps or leaves behind. A line a parser cannot read is
// returned as a BadLine (with the reason), never dropped.
//
// Formats, as DMS documents and feeds them to the programs it wraps:
// - mailserver.env: docker compose env_file syntax, `NAME=value` (optional `export `,
//   optional matching quotes around the value, `#` comments).
// - postfix-main.cf: Postfix main.cf(5) syntax, `name = value`; a line that starts with
//   whitespace continues the previous one.
// - postfix-master.cf: DMS override lines `service/type/parameter=value`, applied by
//   `postconf -P` to master.cf(5) services.
// - postfix-relaymap.cf: sender_dependent_relayhost_maps, `@domain [host]:port`, or a bare
//   `@domain` (the domain is sent without the relay).
// - postfix-sasl-password.cf: smtp_sasl_password_maps, `@domain user:password` or
//   `[host]:port user:password`.
// - postfix-aliases.cf: aliases(5), `name: target, target`; continuation by whitespace.
// - postfix-regexp.cf: a regexp_table(5), `/pattern/flags result`.
// - dovecot-quotas.cf: `user@domain:SIZE`.
// - dovecot.cf: Dovecot config syntax, `name = value` and `section [name] {` ... `}`.
// - opendkim/KeyTable `keyname domain:selector:path`, opendkim/SigningTable
//   `pattern keyname`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace postern::import {

// Longest line any of these parsers accepts; longer lines are BadLines (nothing in a DMS
// folder comes close).
inline constexpr size_t kMaxLineLength = 64 * 1024;

struct BadLine {
  size_t line;       // 1-based
  std::string text;  // the line as written (trimmed, cut for display by the caller)
  std::string reason;
};

// Lines that are blank or comments are skipped by every parser: they are not settings.

struct EnvVar {
  std::string name;
  std::string value;  // quotes removed
  size_t line;
};
struct EnvFile {
  std::vector<EnvVar> vars;
  std::vector<BadLine> bad;
};
EnvFile parseEnvFile(std::string_view text);

struct MainSetting {
  std::string name;
  std::string value;  // continuation lines joined with single spaces
  size_t line;        // first line
  size_t end_line;    // last line (== line unless continued)
};
struct MainCf {
  std::vector<MainSetting> settings;
  std::vector<BadLine> bad;
};
MainCf parseMainCf(std::string_view text);

struct MasterOverride {
  std::string service;  // "smtps", "submission", ...
  std::string type;     // "inet", "unix", ...
  std::string param;    // "smtpd_upstream_proxy_protocol"
  std::string value;
  size_t line;
};
struct MasterCf {
  std::vector<MasterOverride> overrides;
  std::vector<BadLine> bad;
};
MasterCf parseMasterOverrides(std::string_view text);

struct RelayRoute {
  std::string domain;  // sender domain, lowercased, without '@'
  std::string host;    // empty: no relay for this domain
  unsigned port = 25;
  bool mx_lookup = false;  // host written without [brackets]: Postfix would look up its MX
  size_t line;
};
struct RelayMap {
  std::vector<RelayRoute> routes;
  std::vector<BadLine> bad;
};
RelayMap parseRelayMap(std::string_view text);

struct SaslPassword {
  std::string key;  // "@domain" or "[host]:port" as written
  std::string user;
  std::string password;  // never printed
  size_t line;
};
struct SaslPasswords {
  std::vector<SaslPassword> entries;
  std::vector<BadLine> bad;  // reasons and texts never contain the password
};
SaslPasswords parseSaslPasswords(std::string_view text);

struct LocalAlias {
  std::string name;                  // lowercased local name
  std::vector<std::string> targets;  // as written
  size_t line;
  size_t end_line;
};
struct LocalAliases {
  std::vector<LocalAlias> aliases;
  std::vector<BadLine> bad;
};
LocalAliases parseLocalAliases(std::string_view text);

struct RegexpAlias {
  std::string pattern;  // between the slashes
  std::string flags;    // after the closing slash
  std::string result;   // the rest of the line
  size_t line;
};
struct RegexpAliases {
  std::vector<RegexpAlias> rules;
  std::vector<BadLine> bad;
};
RegexpAliases parseRegexpAliases(std::string_view text);
// The address a regexp rule matches when it matches exactly one: `^local@domain$` with
// only literal characters (dots escaped). Empty otherwise.
std::string literalAddressOf(const RegexpAlias& rule);

struct Quota {
  std::string address;  // lowercased
  std::string size;     // as written ("50M", "1G", "0")
  size_t line;
};
struct Quotas {
  std::vector<Quota> quotas;
  std::vector<BadLine> bad;
};
Quotas parseQuotas(std::string_view text);

struct DovecotSetting {
  std::string section;  // enclosing sections joined by '/', e.g. "service imap-login/inet_listener imap"; empty at top
  std::string name;     // setting name; for a section opening, the section header
  std::string value;
  bool opens_section = false;
  size_t line;
};
struct DovecotCf {
  std::vector<DovecotSetting> settings;
  std::vector<BadLine> bad;
};
DovecotCf parseDovecotCf(std::string_view text);

struct DkimKeyEntry {  // one KeyTable line
  std::string key_name;
  std::string domain;
  std::string selector;
  std::string path;  // as written (a path inside the container)
  size_t line;
};
struct DkimSigningEntry {  // one SigningTable line
  std::string pattern;
  std::string key_name;
  size_t line;
};
struct KeyTable {
  std::vector<DkimKeyEntry> keys;
  std::vector<BadLine> bad;
};
struct SigningTable {
  std::vector<DkimSigningEntry> entries;
  std::vector<BadLine> bad;
};
KeyTable parseKeyTable(std::string_view text);
SigningTable parseSigningTable(std::string_view text);

// The domain and selector an rspamd/dkim key file name stands for, as DMS's
// `setup config dkim` names them: `rsa-<bits>-<selector>-<domain>.private.txt` or
// `ed25519-<selector>-<domain>.private.txt`. False when the name does not fit.
bool parseRspamdKeyName(std::string_view file_name, std::string& domain, std::string& selector);

}  // namespace postern::import
