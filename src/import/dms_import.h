// `postern import docker-mailserver DIR`: turns a docker-mailserver (DMS) config folder
// into a postern.toml plus the files Postern reads as they are (DESIGN.md "Command line").
//
// The plan is computed without touching the file system: the caller reads the folder into
// an ImportInput and writes what the Plan lists. Every setting of the input ends up in the
// report, either as `mapped` (with its source file:line and the TOML it became) or as
// `not carried over` (with file:line and the reason); blank lines and comments are not
// settings. Report lines are stable and meant to be grepped:
//
//   mapped  postfix-master.cf:3  submissions/inet/smtpd_upstream_proxy_protocol=haproxy -> [[listener]]
//   service="submissions" proxy_protocol="required" not carried over  postfix-main.cf:7  smtpd_banner = ...: Postern
//   has no custom banner warning  postfix-master.cf:2  'smtps' is the old name of 'submissions' (port 465) ... note ...
//
// Passwords (accounts hashes, relay passwords) never appear in the report.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace postern::import {

// What the configuration loader of this build accepts beyond the first-wave contract
// (DESIGN.md "Configuration added by the second wave"). A feature that is off is reported
// as not carried over, with the reason, instead of being written.
struct Features {
  bool server_user = false;  // [server] user/group
  bool routes = false;       // [[route]] relay/tls/auth_file
  bool dkim = false;         // [dkim] keys
  bool quotas = false;       // [directory] quotas
  bool imap = false;         // listeners "imap"/"imaps"
  bool pop3 = false;         // listeners "pop3"/"pop3s"
};

// Asks this build's configuration loader which Features it accepts (by loading small
// configurations from memory).
Features detectFeatures();

struct ImportInput {
  // Every regular file under DIR, by path relative to DIR ("postfix-main.cf",
  // "opendkim/keys/example.com/mail.private", "ssl/cert.pem", ...), with its contents.
  std::map<std::string, std::string> files;
  // Files found but not read (too large, unreadable), with the reason.
  std::map<std::string, std::string> unread;
  // mailserver.env, when found (in DIR or its parent), and how to name it in the report.
  bool has_env = false;
  std::string env_label;  // "mailserver.env" or "../mailserver.env"
  std::string env_text;
};

struct OutputFile {
  std::string path;  // relative to the folder of the generated postern.toml
  std::string content;
  unsigned mode = 0600;
};

struct Plan {
  std::string toml;                 // the postern.toml text
  std::vector<OutputFile> files;    // written next to it (folders made 0700)
  std::vector<std::string> report;  // one line each, in input file order
  unsigned mapped = 0;
  unsigned not_carried = 0;
  unsigned warnings = 0;
};

// Builds the plan. Pure: reads only `in` and `features`.
Plan planImport(const ImportInput& in, const Features& features);

}  // namespace postern::import
