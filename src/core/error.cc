#include <cerrno>
#include <cstring>

#include "netcell/result.h"

namespace netcell {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kAlreadyExists: return "already exists";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kPermissionDenied: return "permission denied";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kExhausted: return "exhausted";
    case ErrorCode::kSystem: return "system error";
    case ErrorCode::kCorrupt: return "corrupt state";
  }
  return "unknown";
}

Error Error::from_errno(std::string what, int err) {
  ErrorCode code = ErrorCode::kSystem;
  switch (err) {
    case EPERM:
    case EACCES: code = ErrorCode::kPermissionDenied; break;
    case EEXIST: code = ErrorCode::kAlreadyExists; break;
    case ENOENT:
    case ESRCH:
    case ENODEV: code = ErrorCode::kNotFound; break;
    case EINVAL: code = ErrorCode::kInvalidArgument; break;
    case EADDRINUSE:
    case EBUSY: code = ErrorCode::kConflict; break;
    case ENOSYS:
    case EOPNOTSUPP: code = ErrorCode::kUnsupported; break;
    default: break;
  }
  return Error(code, std::move(what), err);
}

std::string Error::to_string() const {
  std::string out;
  for (auto it = context_.rbegin(); it != context_.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  out += message_;
  if (sys_errno_ != 0) {
    out += ": ";
    out += std::strerror(sys_errno_);
  }
  // Errors are one line, whatever bytes the input that caused them held.
  std::string line;
  for (char c : out) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      line += "\\x";
      line += kHex[byte >> 4];
      line += kHex[byte & 0xf];
    } else {
      line += c;
    }
  }
  return line;
}

}  // namespace netcell
