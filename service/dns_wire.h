// netcell-service's resolver: the DNS messages it reads and writes (queries from namespaces,
// answers from upstream servers), in their wire form, through ldns. Apart from the resolver
// (service/resolver.h) so that the fuzz target (tests/fuzz/fuzz_dns.cc) builds from this file
// and the core's types alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netcell/address.h"

namespace netcell::service {

inline constexpr std::uint16_t kClassIn = 1;  // the class of every question the resolver answers

// What a query is, read from its wire form by ldns; nullopt for anything that is not a single
// question standard query.
struct Question {
  std::uint16_t id = 0;
  std::string name;  // lower case, no trailing dot ("" for the root)
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
};
std::optional<Question> parse_query(const std::uint8_t* data, std::size_t size);
// An answer to `query` (its wire form) with `rcode` and no records: REFUSED, NXDOMAIN, SERVFAIL.
std::vector<std::uint8_t> error_reply(const std::uint8_t* query, std::size_t size,
                                      std::uint16_t rcode);
// The addresses an upstream answer gives `name`: A and AAAA records of the name and of every name
// the CNAME chain inside this one answer leads to, and the least TTL on the way. nullopt when the
// answer is not a response to `question` (id, name, type, class).
struct Answer {
  std::vector<IpAddress> addresses;
  std::uint32_t ttl = 0;
  bool truncated = false;
  std::uint16_t rcode = 0;
};
std::optional<Answer> read_answer(const std::uint8_t* data, std::size_t size,
                                  const Question& question);
// What a UDP client said it takes (its EDNS size), at least 512 bytes.
std::size_t udp_size_of(const std::uint8_t* query, std::size_t size);

}  // namespace netcell::service
