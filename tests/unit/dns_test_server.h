// tests/e2e/dns_server.py (the loopback DNS responder the e2e tests use) as a child process
// for unit tests of the DNS layer and its users: started with a fixed zone (dns_server.py's
// JSON --zone format), on 127.0.0.1 and a free port read from its first line of output.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "util/ip.h"

namespace postern::test {

class DnsTestServer {
 public:
  DnsTestServer() = default;
  ~DnsTestServer() { stop(); }
  DnsTestServer(const DnsTestServer&) = delete;
  DnsTestServer& operator=(const DnsTestServer&) = delete;

  // `zone`: JSON, e.g. {"records": {"name": [["A", "127.0.0.2"]]}, "ignore": ["*.slow.example"]}.
  // False with `error` set when the server did not come up (python3-dnslib missing, say).
  bool start(const std::string& zone, std::string* error) {
    zone_path_ = ::testing::TempDir() + "/dns_test_server_zone." + std::to_string(::getpid()) + "." +
                 std::to_string(reinterpret_cast<uintptr_t>(this)) + ".json";
    std::ofstream(zone_path_) << zone;
    int out[2];
    if (::pipe(out) != 0) return fail(error, "pipe");
    std::string script = std::string(POSTERN_SOURCE_DIR) + "/tests/e2e/dns_server.py";
    pid_ = ::fork();
    if (pid_ < 0) return fail(error, "fork");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);   // a crashed test binary leaves no server behind
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      ::execl("/usr/bin/python3", "python3", script.c_str(), "--port", "0", "--zone", zone_path_.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    FILE* f = ::fdopen(out[0], "r");
    char line[256] = {};
    bool got = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);   // the server prints nothing else
    if (!got) return fail(error, "the server printed nothing (is python3-dnslib installed?)");
    std::string s(line);
    auto colon = s.rfind(':');
    if (s.rfind("listening on ", 0) != 0 || colon == std::string::npos) return fail(error, "unexpected output: " + s);
    port_ = static_cast<uint16_t>(std::stoi(s.substr(colon + 1)));
    return true;
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (!zone_path_.empty()) std::remove(zone_path_.c_str());
    zone_path_.clear();
  }

  uint16_t port() const { return port_; }
  Endpoint endpoint() const { return Endpoint{*IpAddress::parse("127.0.0.1"), port_}; }

 private:
  bool fail(std::string* error, std::string what) {
    *error = std::move(what);
    return false;
  }
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string zone_path_;
};

}  // namespace postern::test
