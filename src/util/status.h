// Errors as values: a Status says ok or carries a code and a message; Result<T> holds
// either a value or a Status. Used on every path where input may be bad, so nothing on
// the data path throws.
#pragma once

#include <cassert>
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace postern {

class Status {
 public:
  enum class Code { kOk, kInvalid, kNotFound, kIo, kCorruption, kUnsupported, kExists };

  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid(std::string msg) { return Status(Code::kInvalid, std::move(msg)); }
  static Status notFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status io(std::string msg) { return Status(Code::kIo, std::move(msg)); }
  static Status corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status unsupported(std::string msg) { return Status(Code::kUnsupported, std::move(msg)); }
  static Status exists(std::string msg) { return Status(Code::kExists, std::move(msg)); }
  // An I/O error from a system call: keeps errno so callers can tell ENOSPC from EIO.
  static Status fromErrno(int err, std::string msg) {
    Status s(Code::kIo, std::move(msg));
    s.errno_ = err;
    return s;
  }

  bool isOk() const { return code_ == Code::kOk; }
  explicit operator bool() const { return isOk(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // The errno behind an I/O error (0 when there is none).
  int sysErrno() const { return errno_; }
  // True for a full disk or an exhausted quota: the caller should say "insufficient storage".
  bool isNoSpace() const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string message_;
};

inline bool Status::isNoSpace() const { return errno_ == ENOSPC || errno_ == EDQUOT; }

// Result<T>: a T or a non-ok Status.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {    // NOLINT
    assert(!std::get<Status>(v_).isOk());
  }
  bool isOk() const { return v_.index() == 0; }
  explicit operator bool() const { return isOk(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Status& status() const {
    static const Status kOk;
    return isOk() ? kOk : std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace postern
