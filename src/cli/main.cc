// Entry point: parses the global options and dispatches to a subcommand.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

using namespace postern::cli;

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "postern: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--config" || arg == "-c") a.config_path = value("--config");
    else if (arg.rfind("--config=", 0) == 0) a.config_path = arg.substr(9);
    else if (arg == "--password-stdin") a.password_stdin = true;
    else if (arg == "--through") a.through.push_back(value("--through"));
    else if (arg == "--ca") a.ca_file = value("--ca");
    else if (arg == "--for") a.ban_for = value("--for");
    else if (arg == "--all") a.all = true;
    else if (arg == "--selector" || arg == "--type" || arg == "--bits") a.dkim[arg.substr(2)] = value(arg.c_str());
    else if (arg == "--output" || arg == "-o") a.output = value("--output");
    else if (arg == "--dry-run") a.dry_run = true;
    else if (arg == "--force") a.force = true;
    else if (arg == "--ip") a.ip = value("--ip");
    else if (arg == "--helo") a.helo = value("--helo");
    else if (arg == "--mail-from") a.mail_from = value("--mail-from");
    else if (arg == "--json") a.json = true;
    else if (arg == "--help" || arg == "-h") return usage(0);
    else if (arg.size() > 1 && arg[0] == '-') {
      std::fprintf(stderr, "postern: unknown option %s\n", arg.c_str());
      return usage(2);
    } else a.positional.push_back(arg);
  }
  if (a.positional.empty()) return usage(2);
  const std::string cmd = a.positional[0];
  if (cmd == "serve") return runServe(a);
  if (cmd == "config") return runConfig(a);
  if (cmd == "account") return runAccount(a);
  if (cmd == "alias") return runAlias(a);
  if (cmd == "ban") return runBan(a);
  if (cmd == "queue") return runQueue(a);
  if (cmd == "cert") return runCert(a);
  if (cmd == "doctor") return runDoctor(a);
  if (cmd == "dkim") return runDkim(a);
  if (cmd == "import") return runImport(a);
  if (cmd == "verify") return runVerify(a);
  if (cmd == "version" || cmd == "--version") {
    std::printf("postern %s\n", POSTERN_VERSION);
    return 0;
  }
  std::fprintf(stderr, "postern: unknown command '%s'\n", cmd.c_str());
  return usage(2);
}
