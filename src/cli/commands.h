// The `postern` command line (DESIGN.md "Command line (contract)"). Each subcommand is a
// function from arguments to an exit status; errors go to stderr.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace postern::cli {

inline constexpr const char* kDefaultConfigPath = "/etc/postern/postern.toml";

struct Args {
  std::vector<std::string> positional;
  std::string config_path = kDefaultConfigPath;
  bool password_stdin = false;
  std::vector<std::string> through;   // doctor --through
  std::string ca_file;                // doctor --ca
  std::string ban_for;                // ban add --for
  bool all = false;                   // queue retry --all
  std::map<std::string, std::string> dkim;   // dkim keygen --selector/--type/--bits
  std::string output;                 // import --output (default: config_path)
  bool dry_run = false;               // import --dry-run
  bool force = false;                 // import --force
  std::string ip, helo, mail_from;    // verify --ip/--helo/--mail-from
  bool json = false;                  // verify --json
};

int runServe(const Args& a);
int runConfig(const Args& a);
int runAccount(const Args& a);
int runAlias(const Args& a);
int runBan(const Args& a);
int runQueue(const Args& a);
int runCert(const Args& a);
int runDoctor(const Args& a);
int runDkim(const Args& a);   // cli/dkim_command.cc
int runImport(const Args& a);   // cli/import.cc
int runVerify(const Args& a);   // cli/verify_command.cc
int usage(int status);

}  // namespace postern::cli
