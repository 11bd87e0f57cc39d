// app/notify: the exact datagrams a Type=notify unit receives (sd_notify(3)), read from a
// socket the test binds in the abstract namespace and names in NOTIFY_SOCKET.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>

#include "app/notify.h"

namespace postern::app {
namespace {

class NotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    std::string name = "postern-unit-notify-" + std::to_string(::getpid());
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    name.copy(a.sun_path + 1, sizeof(a.sun_path) - 2);   // sun_path[0] = 0: abstract
    auto len = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
  }
  std::string next() {
    char buf[512];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n < 0 ? std::string("(nothing)") : std::string(buf, size_t(n));
  }
  int fd_ = -1;
};

TEST_F(NotifyTest, ReadyCarriesTheStatus) {
  notifyReady("serving 3 listeners");
  EXPECT_EQ(next(), "READY=1\nSTATUS=serving 3 listeners");
}

TEST_F(NotifyTest, StoppingAndReloading) {
  notifyStopping();
  EXPECT_EQ(next(), "STOPPING=1\nSTATUS=stopping");
  timespec before{}, after{};
  ::clock_gettime(CLOCK_MONOTONIC, &before);
  notifyReloading();
  ::clock_gettime(CLOCK_MONOTONIC, &after);
  std::string m = next();
  const std::string prefix = "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=";
  ASSERT_EQ(m.substr(0, prefix.size()), prefix) << m;
  uint64_t usec = std::stoull(m.substr(prefix.size()));
  EXPECT_GE(usec, uint64_t(before.tv_sec) * 1000000 + uint64_t(before.tv_nsec) / 1000);
  EXPECT_LE(usec, uint64_t(after.tv_sec) * 1000000 + uint64_t(after.tv_nsec) / 1000);
}

// Outside systemd there is no NOTIFY_SOCKET: nothing is sent and nothing fails.
TEST_F(NotifyTest, WithoutNotifySocketNothingIsSent) {
  ::unsetenv("NOTIFY_SOCKET");
  notifyReady("x");
  notifyReloading();
  notifyStopping();
  timeval tv{0, 100000};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_EQ(next(), "(nothing)");
}

}  // namespace
}  // namespace postern::app
