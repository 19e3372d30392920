// netcell: the one error type of the library and the Result<T> every fallible call returns.
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>
#include <vector>

namespace netcell {

// What kind of failure an Error is. The CLI maps kInvalidArgument to exit code 2 and everything
// else to exit code 1.
enum class ErrorCode {
  kInvalidArgument,   // the caller's input is malformed or out of range
  kNotFound,          // a named namespace, network or process does not exist
  kAlreadyExists,     // a name or resource is taken
  kConflict,          // the request collides with existing state (port, address, in use)
  kPermissionDenied,  // missing privilege (CAP_NET_ADMIN, CAP_SYS_ADMIN)
  kUnsupported,       // not available with this backend, kernel or build
  kExhausted,         // an address pool or similar resource is used up
  kSystem,            // a system call or kernel request failed
  kCorrupt,           // a state record could not be read back
};

std::string_view to_string(ErrorCode code);

// An error with a code, the errno it came from (0 if none), a message and a chain of context added
// by each layer it crossed, outermost first when printed:
//   "create web: veth: RTM_NEWLINK: File exists (errno 17)".
class Error {
 public:
  Error(ErrorCode code, std::string message, int sys_errno = 0)
      : code_(code), sys_errno_(sys_errno), message_(std::move(message)) {}

  // An error from a failed system call: kSystem unless errno says otherwise (EPERM, EEXIST, ...).
  static Error from_errno(std::string what, int err);

  ErrorCode code() const { return code_; }
  int sys_errno() const { return sys_errno_; }
  const std::string& message() const { return message_; }
  const std::vector<std::string>& context() const { return context_; }

  // Adds a layer of context ("while creating web"); returns *this for chaining.
  Error& with_context(std::string ctx) & {
    context_.push_back(std::move(ctx));
    return *this;
  }
  Error&& with_context(std::string ctx) && {
    context_.push_back(std::move(ctx));
    return std::move(*this);
  }

  // One line: contexts (outermost first), the message, and strerror(errno) when set; control
  // bytes (from hostile input echoed in a message) are shown as \xNN.
  std::string to_string() const;

 private:
  ErrorCode code_;
  int sys_errno_;
  std::string message_;
  std::vector<std::string> context_;
};

template <typename T>
using Result = tl::expected<T, Error>;

// Shorthand for `return fail(ErrorCode::kNotFound, "...")` inside functions returning Result<T>.
inline tl::unexpected<Error> fail(ErrorCode code, std::string message, int sys_errno = 0) {
  return tl::unexpected<Error>(Error(code, std::move(message), sys_errno));
}
inline tl::unexpected<Error> fail(Error error) {
  return tl::unexpected<Error>(std::move(error));
}
inline tl::unexpected<Error> fail_errno(std::string what, int err) {
  return tl::unexpected<Error>(Error::from_errno(std::move(what), err));
}

// Result<void> success value.
inline Result<void> ok() {
  return {};
}

}  // namespace netcell

// Propagates the error of a Result expression, adding no context:
//   NETCELL_TRY(store.write(record));
// Each use gets its own variable name, so uses may nest (a lambda inside the expression).
#define NETCELL_TRY(expr) NETCELL_TRY_IMPL(expr, NETCELL_CONCAT(netcell_try_, __COUNTER__))
#define NETCELL_CONCAT_INNER(a, b) a##b
#define NETCELL_CONCAT(a, b) NETCELL_CONCAT_INNER(a, b)
#define NETCELL_TRY_IMPL(expr, var)                           \
  do {                                                        \
    auto var = (expr);                                        \
    if (!var) return ::netcell::fail(std::move(var).error()); \
  } while (0)
